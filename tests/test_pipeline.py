"""The run pipeline computes each per-run setting once: the process group is joined once per
training (or resume), and ``train.labelled_per_batch: auto`` becomes a number once, where the
config is resolved against the data; everything after reads that number."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from mtvae.autoconf import labelled_per_batch
from mtvae.data.sources import load_dataset
from mtvae.io import read_yaml
from mtvae.pipeline import resume_run, train_run
from mtvae.runconfig import resolve_config
from mtvae.train.distributed import init_distributed

TINY = {
    "data": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16, "label_fraction": 0.1},
    "model": {"name": "mtvae", "tasks": ["shape"], "latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [8]}},
    "train": {"epochs": 2, "batch_size": 16, "progress": False, "restore_best": False},
}


def count_calls(monkeypatch, function: Callable) -> list[tuple]:
    """Wrap ``function`` in every loaded mtvae module that holds it (its own and each that
    imported it by name); returns the list of the calls' arguments, which grows as it is
    called from anywhere."""
    calls: list[tuple] = []

    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("mtvae") and module is not None:
            for attr, value in list(vars(module).items()):
                if value is function:
                    monkeypatch.setattr(module, attr, counted)
    return calls


@pytest.fixture(scope="module")
def data():
    return load_dataset(resolve_config(TINY).data)


def test_a_training_joins_the_process_group_once_and_resolves_oversampling_once(
        monkeypatch, tmp_path, data):
    import mtvae.pipeline  # noqa: F401  (loaded, so its imported names are wrapped too)
    import mtvae.train.trainer  # noqa: F401

    joins = count_calls(monkeypatch, init_distributed)
    resolutions = count_calls(monkeypatch, labelled_per_batch)
    run = train_run(resolve_config(TINY), tmp_path / "run", dataset=data)
    assert len(joins) == 1
    assert len(resolutions) == 1
    # labels are scarce (10%): auto appends batch_size // 2 labelled samples to each batch
    assert read_yaml(run / "config.yaml")["train"]["labelled_per_batch"] == 8

    joins.clear(), resolutions.clear()
    resume_run(run, dataset=data)
    assert len(joins) == 1
    assert len(resolutions) == 1  # config.yaml holds the number: resolving it keeps it
    assert read_yaml(run / "config.yaml")["train"]["labelled_per_batch"] == 8


def test_a_resume_reads_auto_written_by_hand_as_the_number_the_checkpoint_holds(tmp_path, data):
    """config.yaml records numbers; an ``auto`` written there by hand resolves, as for a new
    run, to the number the checkpoint's config holds, so the checkpoint is not refused."""
    from mtvae.io import write_yaml

    run = train_run(resolve_config(TINY), tmp_path / "run", dataset=data)
    raw = read_yaml(run / "config.yaml")
    raw["train"]["labelled_per_batch"] = "auto"
    write_yaml(run / "config.yaml", raw)
    assert resume_run(run, dataset=data) == run
