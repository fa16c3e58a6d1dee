"""Multitask VAE: masks, block gradients, conditional priors, options, end to end."""

import itertools
import json
import math

import pytest
import torch
from torch.distributions import Normal

from mtvae.config import resolve_config
from mtvae.data.loader import InMemoryLoader
from mtvae.data.shapes import load_shapes
from mtvae.data.sources import load_dataset
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError
from mtvae.latent.priors import ConditionalPrior
from mtvae.models.registry import build_model
from mtvae.nn.heads import reverse_gradient
from mtvae.objectives.task_losses import masked_task_loss
from mtvae.objectives.weighting import STRATEGIES

SMALL_BODY = {"arch": "mlp", "hidden": [32]}


@pytest.fixture(scope="module")
def data():
    return load_shapes(n_train=128, n_val=32, n_test=32, image_size=16)


def _model(data, **options):
    model_cfg = {"name": "mtvae", "latent_dim": 6, "encoder": SMALL_BODY, **options}
    config = resolve_config({"model": model_cfg})
    torch.manual_seed(0)
    return build_model(config.model, data.info)


def _batch(data, n=16):
    return next(iter(InMemoryLoader(data.train, n)))


def test_masked_loss_ignores_unlabelled_samples_in_value_and_gradient():
    task = TaskSpec("c", "categorical", 3)
    output = torch.randn(4, 3, requires_grad=True)
    mask = torch.tensor([True, False, True, False])
    target = torch.tensor([0, -1, 2, 99])  # garbage where unlabelled
    loss = masked_task_loss(task, output, target, mask)
    loss.backward()
    assert torch.all(output.grad[~mask] == 0) and torch.all(output.grad[mask] != 0)
    expected = torch.nn.functional.cross_entropy(output[mask], target[mask])
    assert torch.allclose(loss, expected)


def test_regression_loss_with_nan_for_missing_labels_stays_finite():
    task = TaskSpec("r", "regression")
    output = torch.randn(3, 2, requires_grad=True)
    loss = masked_task_loss(task, output, torch.tensor([0.5, float("nan"), 0.1]),
                            torch.tensor([True, False, True]))
    loss.backward()
    assert torch.isfinite(loss) and torch.all(output.grad[1] == 0)


def test_a_sample_without_label_gives_no_gradient_to_its_head(data):
    model = _model(data, tasks=["shape"])
    batch = _batch(data, 8)
    batch.masks["shape"] = torch.zeros(8, dtype=torch.bool)
    model(batch).losses["task/shape"].backward()
    grads = [p.grad for p in model.heads["shape"].parameters()]
    assert all(g is None or torch.all(g == 0) for g in grads)


@pytest.mark.parametrize("read_shared", [False, True])
def test_partitioned_task_loss_reaches_only_the_blocks_its_head_reads(data, read_shared):
    model = _model(data, tasks=["shape", "x"], task_dim=2,  # blocks: shared 2, shape 2, x 2
                   heads_read_shared=read_shared)
    batch = _batch(data)
    h = model.encode(batch.x).loc.detach().requires_grad_(True)
    out = model.task_outputs(h)["shape"]
    masked_task_loss(model.tasks["shape"], out, batch.targets["shape"], batch.masks["shape"]).backward()
    read = ["shared", "shape"] if read_shared else ["shape"]
    inside = torch.zeros(h.shape[1], dtype=torch.bool)
    for name in read:
        inside[model.blocks[name]] = True
        assert h.grad[:, model.blocks[name]].abs().sum() > 0
    assert torch.all(h.grad[:, ~inside] == 0)  # never the other task's block


def test_shared_layout_heads_read_everything(data):
    model = _model(data, tasks=["shape"], layout="shared")
    batch = _batch(data)
    h = model.encode(batch.x).loc.detach().requires_grad_(True)
    out = model.task_outputs(h)["shape"]
    masked_task_loss(model.tasks["shape"], out, batch.targets["shape"], batch.masks["shape"]).backward()
    assert torch.all(h.grad.abs().sum(0) > 0)


def test_heads_can_read_the_shared_block(data):
    model = _model(data, tasks=["shape", "x"], heads_read_shared=True)
    assert model.head_reads["shape"] == [model.blocks["shared"], model.blocks["shape"]]


def test_head_blocks_choose_what_each_head_reads(data):
    model = _model(data, tasks=["shape", "x"], head_blocks={"shape": ["shape", "x"]})
    assert model.head_reads["shape"] == [model.blocks["shape"], model.blocks["x"]]
    assert model.head_reads["x"] == [model.blocks["shared"], model.blocks["x"]]  # default
    assert model.heads["shape"].net[0].in_features == 4
    with pytest.raises(UserError, match="Did you mean 'shape'"):
        _model(data, tasks=["shape", "x"], head_blocks={"shape": ["shap"]})
    with pytest.raises(UserError, match="raise latent_dim"):
        _model(data, tasks=["shape", "x"], latent_dim=4, head_blocks={"x": ["shared"]})
    with pytest.raises(UserError, match="layout=partitioned"):
        _model(data, tasks=["shape"], layout="shared", head_blocks={"shape": ["shared"]})


def test_detach_stops_task_gradients_at_the_latent(data):
    model = _model(data, tasks=["shape"], detach=True)
    model(_batch(data)).losses["task/shape"].backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert any(p.grad is not None for p in model.heads.parameters())


def test_gradient_reversal_negates_and_scales():
    x = torch.ones(3, requires_grad=True)
    (reverse_gradient(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-0.5, -1.0, -1.5]))


def test_inhibition_adds_adversaries_that_read_the_other_blocks(data):
    model = _model(data, tasks=["shape", "x"], inhibition=True)
    out = model(_batch(data))
    assert {"adv/shape", "adv/x"} <= set(out.losses)
    width = model.config.latent_dim - model.config.task_dim
    assert model.adversaries["shape"].net[0].in_features == width


def test_conditional_prior_kl_matches_monte_carlo():
    torch.manual_seed(0)
    prior = ConditionalPrior(TaskSpec("c", "categorical", 3), dim=2)
    with torch.no_grad():
        prior.table.normal_(0.0, 0.5)
    q = Normal(torch.randn(4, 2), torch.rand(4, 2) + 0.5)
    y = torch.tensor([0, 1, 2, 1])
    probs = torch.softmax(torch.randn(4, 3), 1)
    mask = torch.tensor([True, True, False, False])
    analytic = prior.kl(q, y, mask, probs).sum(1)
    z = q.sample((200_000,))
    log_q = q.log_prob(z).sum(-1)
    labelled = (log_q - prior(y).log_prob(z).sum(-1)).mean(0)
    per_class = torch.stack([(log_q - prior(torch.full((4,), k)).log_prob(z).sum(-1)).mean(0)
                             for k in range(3)], 1)
    expected = torch.where(mask, labelled, (probs * per_class).sum(1))
    assert torch.allclose(analytic, expected, rtol=0.01, atol=0.02)


def test_regression_conditional_prior_falls_back_to_standard_when_unlabelled():
    prior = ConditionalPrior(TaskSpec("r", "regression"), dim=2)
    with torch.no_grad():
        prior.map.bias.fill_(0.7)
    q = Normal(torch.zeros(2, 2), torch.ones(2, 2))
    kl = prior.kl(q, torch.tensor([0.3, float("nan")]), torch.tensor([True, False]))
    assert kl[0].sum() > 0 and torch.allclose(kl[1], torch.zeros(2))


def test_label_marginal_is_tracked_and_used_for_sampling_labels():
    prior = ConditionalPrior(TaskSpec("c", "categorical", 3), dim=1)
    prior.observe(torch.tensor([2, 2, 2, 0]), torch.tensor([True, True, True, False]))
    assert prior.class_counts.tolist() == [0.0, 0.0, 3.0]
    assert set(prior.sample_labels(50).tolist()) == {2}
    reg = ConditionalPrior(TaskSpec("r", "regression"), dim=1)
    values = torch.rand(1000)
    reg.observe(values[:300], torch.ones(300, dtype=torch.bool))
    reg.observe(values[300:], torch.ones(700, dtype=torch.bool))
    mean, std = reg._label_mean_std()
    assert mean == pytest.approx(float(values.mean()), abs=1e-5)
    assert std == pytest.approx(float(values.std()), abs=1e-4)


def test_conditional_samples_and_interventions_use_the_label(data):
    model = _model(data, tasks=["shape"], prior="conditional")
    with torch.no_grad():
        model.priors["shape"].table[:, :2] = torch.tensor([[-5.0, -5.0], [0.0, 0.0], [5.0, 5.0]])
    z = model.sample_latent(200, torch.Generator().manual_seed(0), {"shape": 2})
    assert torch.allclose(z[:, model.blocks["shape"]].mean(0), torch.tensor([5.0, 5.0]), atol=0.3)
    x = data.test.x[:3]
    assert model.intervene(x, "shape", 0).shape == x.shape
    assert not torch.allclose(model.intervene(x, "shape", 0), model.intervene(x, "shape", 2))
    with pytest.raises(UserError, match="not a class"):
        model.sample(2, condition={"shape": 5})


def test_option_errors_are_clear(data):
    with pytest.raises(UserError, match="layout=partitioned"):
        _model(data, layout="shared", prior="conditional")
    with pytest.raises(UserError, match="latent_dim=3 holds at most 1 task blocks of "
                       "model.task_dim=2, not 5; raise model.latent_dim to at least 10"):
        _model(data, latent_dim=3, task_dim=2)
    with pytest.raises(UserError, match="Did you mean 'shape'"):
        _model(data, tasks=["shap"])
    with pytest.raises(UserError, match="Cannot condition"):
        _model(data, tasks=["shape"]).sample(2, condition={"shape": 1})


def test_iwae_is_a_finite_bound_with_conditional_priors(data):
    from mtvae.evaluate.likelihood import iwae_log_likelihood

    model = _model(data, tasks=["shape", "x"], prior="conditional").eval()
    model.priors["shape"].observe(data.train.targets["shape"], data.train.masks["shape"])
    model.priors["x"].observe(data.train.targets["x"], data.train.masks["x"])
    torch.manual_seed(0)
    ll = iwae_log_likelihood(model, data.test.x[:8], k=50)
    elbo, _ = model.elbo(data.test.x[:8])
    assert torch.isfinite(ll).all() and ll.mean() >= elbo.mean() - 1.0


COMBOS = [
    (layout, prior, weighting)
    for layout, prior, weighting in itertools.product(
        ["shared", "partitioned"],
        ["standard", "conditional"],
        ["fixed", "uncertainty", "dwa", "gradnorm", "pcgrad", "mgda", "famo"],
    )
    if not (layout == "shared" and prior == "conditional")
]


@pytest.mark.parametrize(("layout", "prior", "weighting"), COMBOS)
def test_every_layout_prior_and_weighting_trains_an_epoch(tmp_path, layout, prior, weighting):
    from mtvae.pipeline import train_run

    config = resolve_config({
        "data": {"n_train": 96, "n_val": 16, "n_test": 16, "image_size": 16, "label_fraction": 0.1},
        "model": {"name": "mtvae", "latent_dim": 6, "layout": layout, "prior": prior,
                  "tasks": ["shape", "x"], "encoder": SMALL_BODY,
                  "weighting": {"strategy": weighting}},
        "train": {"epochs": 2, "batch_size": 32, "progress": False},
    })
    run = train_run(config, tmp_path / "run")
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 2
    for record in epochs:  # NaN would be written as null, so check for finite numbers
        losses = {k: v for k, v in record.items() if k.endswith("loss")}
        assert {"train/loss", "val/loss"} <= losses.keys()
        assert all(isinstance(v, float) and math.isfinite(v) for v in losses.values()), losses
    # only a strategy other than the plain sum reaches the trainer, which logs its weights
    weighted = any(k.startswith("train/weight/") for r in epochs for k in r)
    assert weighted == (not STRATEGIES[weighting].plain_sum)


def test_short_run_learns_shape_well_above_chance_with_ten_percent_labels(tmp_path):
    from mtvae.evaluate.tasks import task_metrics
    from mtvae.pipeline import train_run
    from mtvae.run_directory import load

    # No weight and no oversampling set: the defaults (task_scale auto, labelled_per_batch
    # auto) balance the 1024-pixel reconstruction against the task, which plain weights of 1
    # left at chance.
    config = resolve_config({
        "data": {"n_train": 3000, "n_val": 200, "n_test": 500, "label_fraction": 0.1},
        "model": {"name": "mtvae", "tasks": ["shape"], "latent_dim": 8, "task_dim": 4,
                  "encoder": {"channels": [16, 32, 32], "hidden": [128]}},
        "train": {"epochs": 8, "batch_size": 64, "progress": False, "lr": 2e-3},
    })
    run = train_run(config, tmp_path / "run")
    model, config = load(run)
    data = load_shapes(n_train=1, n_val=1, n_test=500)
    assert int(load_dataset(config.data).train.masks["shape"].sum()) == 300
    accuracy = task_metrics(model, data.test)["task/shape/accuracy"]
    assert accuracy > 0.55  # chance is 1/3; plain weights of 1 stay near it


def test_task_weight_zero_trains_no_head_and_leaves_the_vae_objective(data):
    tasks = {"tasks": ["shape", "x"]}
    weighted = _model(data, task_scale_factor=3.0, **tasks)
    zero, auto = _model(data, task_scale_factor=0.0, **tasks), _model(data, **tasks)
    assert weighted.task_weights["shape"] == pytest.approx(3 * auto.task_weights["shape"])
    assert all(w == 0.0 for w in zero.task_weights.values())
    batch = _batch(data)
    torch.manual_seed(1)
    out = zero(batch)
    out.loss.backward()
    heads = list(zero.heads.parameters())
    assert heads and all(p.grad is None or not p.grad.any() for p in heads)
    assert any(p.grad is not None and p.grad.any() for p in zero.encoder.parameters())
    elbo_only = out.losses["recon"] + out.losses["kl"]
    torch.testing.assert_close(out.loss, elbo_only)  # the task terms add exactly 0


def test_task_scale_factor_is_recorded_only_when_set():
    plain = resolve_config({"model": {"name": "mtvae"}}).to_dict()["model"]
    assert "task_scale_factor" not in plain  # earlier configs keep their run ids
    zero = resolve_config({"model": {"name": "mtvae", "task_scale_factor": 0}}).to_dict()
    assert zero["model"]["task_scale_factor"] == 0
    with pytest.raises(UserError, match="task_scale_factor"):
        resolve_config({"model": {"name": "mtvae", "task_scale_factor": -1}})
    with pytest.raises(UserError, match="task_scale_factor"):
        resolve_config({"model": {"name": "supervised", "task_scale_factor": 0}})
