"""Task weighting: known answers for the pure maths, gradient invariants for every strategy."""

from __future__ import annotations

import copy
import math
import typing

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from mtvae.errors import UserError
from mtvae.objectives.weighting import (
    STRATEGIES,
    WeightingConfig,
    _last_layer_weight,
    build_weighting,
    dwa_weights,
    famo_logit_gradient,
    famo_weights,
    gradnorm_loss,
    min_norm_weights,
    project_conflicting,
    training_weighting,
)

NAMES = ["recon", "kl", "task/shape", "task/scale"]
TASKS = ["task/shape", "task/scale"]


class Toy(nn.Module):
    """A shared trunk, a decoder (recon only) and two task heads; task/scale's loss is 10x."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Linear(4, 6)
        self.decoder = nn.Linear(6, 4)
        self.heads = nn.ModuleDict({"shape": nn.Linear(6, 1), "scale": nn.Linear(6, 1)})

    def shared(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def own(self) -> list[nn.Parameter]:
        return [*self.decoder.parameters(), *self.heads.parameters()]

    def losses(self, x: torch.Tensor, on_trunk_grad=None) -> dict[str, torch.Tensor]:
        h = torch.tanh(self.trunk(x))  # (B, 6)
        if on_trunk_grad is not None:
            h.register_hook(on_trunk_grad)  # fires once per backward pass through the trunk
        return {
            "recon": (self.decoder(h) - x).pow(2).mean(),
            "kl": 0.1 * h.pow(2).mean(),
            "task/shape": (self.heads["shape"](h) - x[:, :1]).pow(2).mean(),
            "task/scale": 10 * (self.heads["scale"](h) - 2 * x[:, :1]).pow(2).mean(),
        }


def _x() -> torch.Tensor:
    return torch.randn(16, 4, generator=torch.Generator().manual_seed(1))


def _grads(loss: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(
        loss, params, retain_graph=True, allow_unused=True, materialize_grads=True
    )
    return list(grads)


def _step(strategy, toy: Toy, x: torch.Tensor, opt=None) -> dict[str, float]:
    toy.zero_grad(set_to_none=True)
    weights = strategy.backward(toy.losses(x), toy.shared())
    if opt is not None:
        opt.step()
    strategy.after_step()
    return weights


def _prime(strategy, toy: Toy, x: torch.Tensor) -> None:
    """Move a strategy off all-ones task weights, so weighting bugs cannot hide."""
    if hasattr(strategy, "log_vars"):
        with torch.no_grad():
            strategy.log_vars.copy_(torch.linspace(0.5, -0.3, len(strategy.balanced)))
    strategy.end_epoch({"recon": 1.0, "task/shape": 1.0, "task/scale": 1.0})
    strategy.end_epoch({"recon": 0.5, "task/shape": 0.9, "task/scale": 0.3})
    _step(strategy, toy, x)  # GradNorm updates its weights in after_step


# ----------------------------------------------------------------------------- PCGrad maths


def test_project_conflicting_removes_the_conflicting_component():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    p1, p2 = project_conflicting([g1, g2])
    # closed form: g1 - (g1·g2 / ||g2||²) g2, and symmetrically
    torch.testing.assert_close(p1, g1 - (g1 @ g2) / (g2 @ g2) * g2)
    torch.testing.assert_close(p1, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(p2, torch.tensor([0.0, 1.0]))
    assert abs(float(p1 @ g2)) < 1e-7 and abs(float(p2 @ g1)) < 1e-7


def test_project_conflicting_leaves_agreeing_gradients_unchanged():
    grads = [torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.0, 2.0])]
    for before, after in zip(grads, project_conflicting(grads), strict=True):
        assert torch.equal(before, after)


def test_project_conflicting_order_is_reproducible_from_the_generator():
    # seed 1: 4 of the 6 pairs conflict, so the visiting order matters (seed 3 had none)
    grads = list(torch.randn(4, 5, generator=torch.Generator().manual_seed(1)))
    first = project_conflicting(grads, torch.Generator().manual_seed(7))
    again = project_conflicting(grads, torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = project_conflicting(grads, torch.Generator().manual_seed(8))  # another order
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


# ------------------------------------------------------------------------------- MGDA maths


def test_min_norm_weights_matches_the_two_gradient_closed_form():
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        g1, g2 = torch.randn(2, 3, generator=gen, dtype=torch.float64)
        gamma = ((g2 - g1) @ g2 / (g1 - g2).pow(2).sum()).clamp(0, 1)
        torch.testing.assert_close(min_norm_weights([g1, g2]), torch.stack([gamma, 1 - gamma]))


def test_min_norm_weights_known_answer_for_orthonormal_vectors():
    torch.testing.assert_close(min_norm_weights(list(torch.eye(3))), torch.full((3,), 1 / 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_norm_point_is_on_the_simplex_optimal_and_below_every_vertex(seed):
    grads = torch.randn(5, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    grads += 0.5  # a shared direction, so the minimum is not trivially near 0
    alpha = min_norm_weights(list(grads))
    assert (alpha >= 0).all() and math.isclose(float(alpha.sum()), 1.0, abs_tol=1e-12)
    v = alpha @ grads
    assert (v.norm() <= grads.norm(dim=1) + 1e-12).all()
    # Optimality (KKT) of the min-norm point: no vertex points further against v than v.
    assert float((grads @ v).min()) >= float(v @ v) - 1e-8


def test_min_norm_weights_for_identical_gradients_give_that_gradient():
    g = torch.tensor([0.3, -1.2, 2.0])
    for k in (2, 3):
        alpha = min_norm_weights([g] * k)
        assert (alpha >= 0).all() and math.isclose(float(alpha.sum()), 1.0, rel_tol=1e-6)
        torch.testing.assert_close(alpha @ torch.stack([g] * k), g)


# -------------------------------------------------------------------------------- DWA maths


def test_dwa_weights_follow_the_loss_ratio_formula_and_sum_to_k():
    prev, prev2 = {"a": 1.0, "b": 2.0, "c": 0.5}, {"a": 2.0, "b": 2.0, "c": 1.0}
    weights = dwa_weights(prev, prev2, temperature=2.0)
    exps = {n: math.exp(prev[n] / prev2[n] / 2.0) for n in prev}
    for name, e in exps.items():
        assert math.isclose(weights[name], 3 * e / sum(exps.values()))
    assert math.isclose(sum(weights.values()), 3.0)
    assert weights["b"] > weights["a"]  # the task whose loss stalled gets more weight


def test_dwa_strategy_uses_ones_for_two_epochs_then_the_last_two_epochs():
    toy, x = Toy(), _x()
    dwa = build_weighting(WeightingConfig(strategy="dwa", dwa_temperature=0.5), NAMES)
    epochs = [
        {"recon": 3.0, "task/shape": 1.0, "task/scale": 4.0},
        {"recon": 2.0, "task/shape": 0.5, "task/scale": 3.0},
        {"recon": 1.0, "task/shape": 0.4, "task/scale": 1.0},
    ]
    for epoch, means in enumerate(epochs):
        weights = _step(dwa, toy, x)
        if epoch < 2:
            assert weights == dict.fromkeys(NAMES, 1.0)
        dwa.end_epoch(means)
    expected = dwa_weights({n: epochs[2][n] for n in TASKS}, {n: epochs[1][n] for n in TASKS}, 0.5)
    assert _step(dwa, toy, x) == {"recon": 1.0, "kl": 1.0, **expected}


# --------------------------------------------------------------------- gradient invariants


def test_fixed_gives_exactly_the_plain_sum_gradient():
    toy, x = Toy(), _x()
    sum(toy.losses(x).values()).backward()
    expected = [p.grad.clone() for p in toy.parameters()]
    _step(build_weighting(WeightingConfig(), NAMES), toy, x)
    assert all(torch.equal(p.grad, e) for p, e in zip(toy.parameters(), expected, strict=True))


@pytest.mark.parametrize("name", sorted(set(STRATEGIES) - {"pcgrad"}))
def test_strategy_gradient_is_that_of_the_weighted_sum_it_reports(name):
    toy, x = Toy(), _x()
    strategy = build_weighting(WeightingConfig(strategy=name), NAMES)
    _prime(strategy, toy, x)
    weights = _step(strategy, toy, x)
    assert weights["recon"] == 1.0 and weights["kl"] == 1.0  # scope="tasks"
    if name != "fixed":
        assert any(weights[t] != 1.0 for t in TASKS)
    reference = sum(weights[n] * loss for n, loss in toy.losses(x).items())
    params = list(toy.parameters())
    for p, g in zip(params, _grads(reference, params), strict=True):
        torch.testing.assert_close(p.grad, g)


def test_pcgrad_projects_shared_gradients_and_leaves_the_rest_to_the_plain_sum():
    toy, x = Toy(), _x()
    losses = toy.losses(x)
    shared = toy.shared()
    g = [torch.cat([t.reshape(-1) for t in _grads(losses[n], shared)]) for n in TASKS]
    assert float(g[0] @ g[1]) < 0, "the toy must have conflicting task gradients"
    unbalanced = torch.cat([t.reshape(-1) for t in _grads(losses["recon"] + losses["kl"], shared)])
    expected_shared = sum(project_conflicting(g)) + unbalanced
    expected_own = _grads(sum(losses.values()), toy.own())

    pcgrad = build_weighting(WeightingConfig(strategy="pcgrad", pcgrad_seed=0), NAMES)
    assert _step(pcgrad, toy, x) == dict.fromkeys(NAMES, 1.0)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in shared]), expected_shared)
    for p, e in zip(toy.own(), expected_own, strict=True):
        torch.testing.assert_close(p.grad, e)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_backward_passes_are_one_or_at_most_k_plus_one(name):
    toy, x = Toy(), _x()
    strategy = build_weighting(WeightingConfig(strategy=name), NAMES)
    passes = []
    strategy.backward(toy.losses(x, on_trunk_grad=passes.append), toy.shared())
    per_loss = name in ("gradnorm", "pcgrad", "mgda")  # famo: one backward, O(1) in K
    assert len(passes) == (len(TASKS) + 1 if per_loss else 1)


def test_scope_picks_the_balanced_terms():
    tasks_only = build_weighting(WeightingConfig(strategy="mgda"), NAMES)
    everything = build_weighting(WeightingConfig(strategy="mgda", scope="all"), NAMES)
    assert tasks_only.balanced == tuple(TASKS)
    assert everything.balanced == tuple(NAMES)
    weights = _step(everything, Toy(), _x())
    assert math.isclose(sum(weights.values()), len(NAMES), rel_tol=1e-5)
    assert weights["recon"] != 1.0


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_resuming_from_state_dict_equals_continuing(name):
    x = _x()
    # scope="all": four balanced terms, so PCGrad's projection order (its generator) matters.
    config = WeightingConfig(strategy=name, scope="all", pcgrad_seed=0)
    toy, strategy = Toy(), build_weighting(config, NAMES)
    opt = torch.optim.SGD([*toy.parameters(), *strategy.parameters()], lr=0.1)
    _prime(strategy, toy, x)
    _step(strategy, toy, x, opt)
    resumed = build_weighting(config, NAMES)
    resumed.load_state_dict(strategy.state_dict())
    twin = copy.deepcopy(toy)
    for _ in range(2):  # the second step sees what after_step did to the state
        assert _step(resumed, twin, x) == _step(strategy, toy, x)
    for a, b in zip(toy.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)


# ------------------------------------------------------------------- learnable strategies


def test_uncertainty_log_variances_move_to_the_log_of_each_loss():
    strategy = build_weighting(WeightingConfig(strategy="uncertainty"), ["task/a", "task/b"])
    opt = torch.optim.Adam(strategy.parameters(), lr=0.05)
    losses = {"task/a": torch.tensor(10.0), "task/b": torch.tensor(0.1)}
    for _ in range(300):
        opt.zero_grad()
        strategy.backward(losses, [])
        opt.step()
    s_a, s_b = strategy.log_vars.tolist()
    assert s_a > s_b
    assert abs(s_a - math.log(10.0)) < 0.05 and abs(s_b - math.log(0.1)) < 0.05


def test_gradnorm_equalises_weighted_gradient_norms():
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    y = x @ torch.randn(4, 2)  # (32, 2): one regression target per task
    trunk, heads = nn.Linear(4, 8), nn.ModuleList([nn.Linear(8, 1), nn.Linear(8, 1)])
    opt = torch.optim.Adam([*trunk.parameters(), *heads.parameters()], lr=1e-2)
    names = ["task/a", "task/b"]
    config = WeightingConfig(strategy="gradnorm", gradnorm_alpha=0.0, gradnorm_lr=0.05)
    gradnorm = build_weighting(config, names)

    def losses():
        h = torch.relu(trunk(x))  # (32, 8)
        scale = [1.0, 10.0]  # task b's gradient is 10x larger
        return {
            n: scale[i] * (heads[i](h) - y[:, i : i + 1]).pow(2).mean() for i, n in enumerate(names)
        }

    def norm_ratio() -> float:
        w, current = gradnorm.task_weights.tolist(), losses()
        norms = [w[i] * _grads(current[n], [trunk.weight])[0].norm() for i, n in enumerate(names)]
        return float(norms[0] / norms[1])

    start = norm_ratio()
    first = torch.stack([loss.detach() for loss in losses().values()])
    for _ in range(100):
        opt.zero_grad(set_to_none=True)
        gradnorm.backward(losses(), list(trunk.parameters()))
        assert gradnorm.task_weights.grad is None  # the trainer's optimizer must skip w
        opt.step()
        gradnorm.after_step()
        assert math.isclose(float(gradnorm.task_weights.detach().sum()), 2.0, rel_tol=1e-5)
    torch.testing.assert_close(gradnorm.initial_losses, first)  # L_i(0) kept from step one
    assert start < 0.3
    assert abs(math.log(norm_ratio())) < 0.25 * abs(math.log(start))


def test_gradnorm_loss_known_answer_with_a_constant_target():
    weights = torch.ones(3, requires_grad=True)
    norms = torch.tensor([1.0, 2.0, 6.0])  # G = (1, 2, 6), target = mean(G) = 3 for each
    loss = gradnorm_loss(weights, norms, torch.tensor([0.5, 0.5, 0.5]), alpha=1.5)
    loss.backward()
    assert math.isclose(loss.item(), 2.0 + 1.0 + 3.0)
    # d/dw_i = sign(G_i - target_i) * norms_i; a target left in the graph would add n_i / 3.
    torch.testing.assert_close(weights.grad, torch.tensor([-1.0, -2.0, 6.0]))


def test_gradnorm_loss_target_follows_the_training_rates():
    weights = torch.ones(2, requires_grad=True)
    norms = torch.tensor([2.0, 2.0])  # equal norms, but task 0 trains slower (higher ratio)
    gradnorm_loss(weights, norms, torch.tensor([0.9, 0.3]), alpha=1.0).backward()
    assert weights.grad[0] < 0 < weights.grad[1]  # so task 0's weight goes up


def test_gradnorm_measures_norms_on_the_last_shared_weight_not_its_bias():
    first, last = nn.Linear(2, 3), nn.Linear(3, 3)
    assert _last_layer_weight([*first.parameters(), *last.parameters()]) is last.weight


def test_learnable_strategies_reject_losses_they_were_not_built_for():
    strategy = build_weighting(WeightingConfig(strategy="uncertainty"), NAMES)
    losses = {"task/new": torch.tensor(1.0, requires_grad=True)}
    with pytest.raises(KeyError, match="build_weighting"):
        strategy.backward(losses, [])


# --------------------------------------------------------------------------------- FAMO


def test_famo_single_update_matches_the_hand_computed_values():
    famo = build_weighting(WeightingConfig(strategy="famo"), ["task/a", "task/b"])
    theta = torch.ones(2, requires_grad=True)

    def step(a: float, b: float) -> dict[str, float]:
        losses = {"task/a": a * theta[0], "task/b": b * theta[1]}
        return famo.backward(losses, [])

    # step 1, logits 0: z = (1/2, 1/2), z/l = (1/8, 1/2), weights 2 * (0.2, 0.8)
    first = step(4.0, 1.0)
    assert first == pytest.approx({"task/a": 0.4, "task/b": 1.6})
    assert famo.logits.tolist() == [0.0, 0.0]
    # step 2: log-losses fell by (ln 2, 0); gradient z * (d - z.d) = (ln2/4, -ln2/4); Adam's
    # first step moves each logit by lr * g / (|g| + eps) = -+0.025 (weight decay of 0 is 0).
    second = step(2.0, 1.0)
    xi = famo.logits.detach().double()
    assert xi.tolist() == pytest.approx([-0.025, 0.025], abs=1e-7)
    z = torch.softmax(torch.tensor([-0.025, 0.025], dtype=torch.float64), 0)
    ratios = z / torch.tensor([2.0, 1.0], dtype=torch.float64)
    expected = (2 * ratios / ratios.sum()).tolist()
    assert [second["task/a"], second["task/b"]] == pytest.approx(expected, rel=1e-6)
    # the gradient is that of sum_i w_i l_i: d/d theta_i = w_i * l_i-coefficient
    assert theta.grad.tolist() == pytest.approx([0.4 * 4 + expected[0] * 2, 1.6 + expected[1]])


def test_famo_weights_and_logit_gradient_known_answers():
    weights = famo_weights(torch.zeros(2), torch.tensor([4.0, 1.0]))
    torch.testing.assert_close(weights, torch.tensor([0.4, 1.6]))
    assert float(weights.sum()) == pytest.approx(2.0)
    grad = famo_logit_gradient(torch.zeros(2), torch.tensor([math.log(2), 0.0]))
    torch.testing.assert_close(grad, torch.tensor([math.log(2) / 4, -math.log(2) / 4]))
    equal = famo_logit_gradient(torch.tensor([0.3, -1.0]), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(equal, torch.zeros(2))  # equal falls: the logits stay


def _rates(config: WeightingConfig, start: tuple[float, float], steps: int = 30):
    """Fall of each log-loss under SGD on two losses 100x apart in scale (task/a steeper)."""
    theta = nn.Parameter(torch.tensor(start))
    strategy = build_weighting(config, ["task/a", "task/b"])
    opt = torch.optim.SGD([theta], lr=0.01)

    def losses() -> dict[str, torch.Tensor]:
        return {"task/a": 10 * theta[0] ** 2, "task/b": 0.1 * theta[1] ** 2}

    first = {k: math.log(float(v.detach())) for k, v in losses().items()}
    for _ in range(steps):
        opt.zero_grad()
        strategy.backward(losses(), [theta])
        opt.step()
        strategy.after_step()
    falls = {k: first[k] - math.log(float(v.detach())) for k, v in losses().items()}
    return falls["task/a"] / falls["task/b"], strategy


def test_famo_equalises_the_rates_at_which_the_losses_fall_where_the_sum_lets_one_dominate():
    fixed, _ = _rates(WeightingConfig(), (1.0, 1.0))
    famo, _ = _rates(WeightingConfig(strategy="famo"), (1.0, 1.0))
    assert fixed > 50  # the plain sum: task/a's loss falls 100x faster (in log) than task/b's
    assert famo == pytest.approx(1.0, rel=0.01)


def test_famo_logits_move_weight_to_the_task_whose_loss_falls_slower():
    frozen, _ = _rates(WeightingConfig(strategy="famo", famo_lr=1e-12), (1.0, 3.0))
    famo, strategy = _rates(WeightingConfig(strategy="famo"), (1.0, 3.0))
    xi_a, xi_b = strategy.logits.tolist()
    assert xi_b > 0.3 > -0.3 > xi_a  # weight moved to task/b, whose loss falls slower
    assert frozen > 50 and famo < frozen / 5  # the update, not the log alone, narrows the gap


def test_famo_gives_a_loss_without_labels_in_the_batch_weight_zero_and_keeps_its_logits():
    famo = build_weighting(WeightingConfig(strategy="famo"), ["task/a", "task/b"])
    x = torch.ones((), requires_grad=True)
    famo.backward({"task/a": 2.0 * x, "task/b": 3.0 * x}, [])
    weights = famo.backward({"task/a": 1.0 * x, "task/b": 0.0 * x}, [])  # no label for b
    assert weights == {"task/a": 1.0, "task/b": 0.0}  # the one live loss: weight 1 (mean 1)
    assert famo.logits.tolist() == [0.0, 0.0]  # a fall cannot be measured for task/b
    assert math.isnan(float(famo.previous_log_losses[1]))


def test_famo_settings_appear_in_the_dump_only_when_set():
    assert not any(k.startswith("famo") for k in WeightingConfig().model_dump(mode="json"))
    dump = WeightingConfig(strategy="famo", famo_lr=0.1).model_dump(mode="json")
    assert dump["famo_lr"] == 0.1 and "famo_decay" not in dump
    assert WeightingConfig.model_validate(dump).famo_lr == 0.1


# ---------------------------------------------------------------------- config and registry


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError):
        WeightingConfig(temprature=2.0)
    with pytest.raises(ValidationError):
        WeightingConfig(dwa_temperature=0.0)
    with pytest.raises(ValidationError):
        WeightingConfig(strategy="nope")


def test_registry_and_config_name_the_same_strategies():
    choices = typing.get_args(WeightingConfig.model_fields["strategy"].annotation)
    assert set(choices) == set(STRATEGIES)


def test_a_plain_sum_strategy_leaves_training_to_the_models_own_loss(monkeypatch):
    """The trainer gets no strategy exactly where the strategy declares itself the plain sum
    (fixed; and a new one registered so), else the built strategy."""
    assert [n for n, cls in STRATEGIES.items() if cls.plain_sum] == ["fixed"]
    for name, cls in STRATEGIES.items():
        strategy = training_weighting(WeightingConfig(strategy=name), NAMES)
        assert (strategy is None) == cls.plain_sum and (strategy is None or type(strategy) is cls)

    class Summed(STRATEGIES["dwa"]):
        plain_sum = True

    monkeypatch.setitem(STRATEGIES, "summed", Summed)
    assert training_weighting(WeightingConfig.model_construct(strategy="summed"), NAMES) is None
    monkeypatch.setitem(STRATEGIES, "fixed", STRATEGIES["dwa"])  # the name decides nothing
    assert isinstance(training_weighting(WeightingConfig(), NAMES), STRATEGIES["dwa"])


def test_build_weighting_rejects_unknown_strategy_with_a_clear_error():
    config = WeightingConfig().model_copy(update={"strategy": "gradnrom"})
    with pytest.raises(UserError, match="Unknown weighting strategy 'gradnrom'.*gradnorm"):
        build_weighting(config, NAMES)


def _two_processes(monkeypatch, other: list[float]) -> None:
    """Pretend to be one of two DDP processes whose all-reduce adds the other's ``other``."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_reduce", lambda t: t.add_(torch.tensor(other)))


def test_famo_averages_the_losses_over_ddp_processes_before_using_them(monkeypatch):
    _two_processes(monkeypatch, [2.0, 3.0])  # the other process's losses; this one's: (6, 1)
    famo = build_weighting(WeightingConfig(strategy="famo"), ["task/a", "task/b"])
    x = torch.ones((), requires_grad=True)
    weights = famo.backward({"task/a": 6.0 * x, "task/b": 1.0 * x}, [])
    # the mean losses (4, 2): weights 2 * (1/4, 1/2) / (3/4)
    assert weights == pytest.approx({"task/a": 2 / 3, "task/b": 4 / 3})
    assert famo.previous_log_losses.tolist() == pytest.approx([math.log(4.0), math.log(2.0)])


def test_uncertainty_averages_its_log_variance_gradient_over_ddp_processes(monkeypatch):
    _two_processes(monkeypatch, [1.0, 1.0])  # the other process's gradient of s
    strategy = build_weighting(WeightingConfig(strategy="uncertainty"), ["task/a", "task/b"])
    x = torch.ones((), requires_grad=True)
    strategy.backward({"task/a": 3.0 * x, "task/b": 0.5 * x}, [])
    # here d/ds (e^-s L + s) at s = 0 is 1 - L: (-2, 0.5); the mean with (1, 1) is (-0.5, 0.75)
    assert strategy.log_vars.grad.tolist() == pytest.approx([-0.5, 0.75])
