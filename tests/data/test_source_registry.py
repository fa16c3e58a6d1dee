"""A data source is one ``SourceEntry`` in ``SOURCES``: registered there alone, it loads, is
checked for memory by its own check, is listed and trains from the command line."""

from __future__ import annotations

import pytest

import mtvae.limits
from mtvae.cli import main
from mtvae.config import DataConfig
from mtvae.data import sources
from mtvae.data.sources import SOURCES, SourceEntry, check_source_memory, load_dataset
from mtvae.errors import UserError


def _load_tiny(cfg):
    from mtvae.data.shapes import load_shapes

    dataset = load_shapes(n_train=40, n_val=8, n_test=8, image_size=cfg.image_size, seed=cfg.seed)
    dataset.name = "tiny"
    return dataset


@pytest.fixture
def tiny(monkeypatch):
    """A new source, ``tiny`` (40/8/8 shapes), registered in SOURCES and nowhere else; its
    memory check records the configs it saw and refuses image_size 64."""
    checked = []

    def memory_check(cfg):
        checked.append(cfg.source)
        if cfg.image_size == 64:
            raise UserError("tiny at 64x64 does not fit")

    entry = SourceEntry("tiny", _load_tiny, "40 tiny shapes; tasks shape (3), scale; 40/8/8",
                        memory_check=memory_check)
    monkeypatch.setitem(SOURCES, "tiny", entry)
    return checked


def test_a_registered_source_loads_with_the_conditions_applied(tiny):
    data = load_dataset(DataConfig(source="tiny", n_train=20, label_fraction=0.5))
    assert data.name == "tiny" and [len(data.split(s)) for s in sources.SPLITS] == [20, 8, 8]
    assert int(data.train.masks["shape"].sum()) == 10  # the label policy ran on it
    assert tiny == ["tiny"]  # its memory check ran first, and refuses before loading:
    with pytest.raises(UserError, match="tiny at 64x64 does not fit"):
        load_dataset(DataConfig(source="tiny", image_size=64))


def test_check_source_memory_runs_the_sources_own_check(tiny):
    check_source_memory(DataConfig(source="tiny"))
    assert tiny == ["tiny"]
    with pytest.raises(UserError, match="tiny at 64x64 does not fit"):
        check_source_memory(DataConfig(source="tiny", image_size=64))


def test_a_path_source_without_its_path_is_not_checked(monkeypatch):
    def refuse(cfg):
        raise AssertionError("checked without a PATH")

    monkeypatch.setitem(SOURCES, "files", SourceEntry("files:PATH", _load_tiny, "tasks: none",
                                                      takes_path=True, memory_check=refuse))
    check_source_memory(DataConfig(source="files"))  # loading says the PATH is missing
    with pytest.raises(UserError, match="needs a file: --data files:PATH"):
        load_dataset(DataConfig(source="files"))


def test_the_built_in_checks_refuse_what_cannot_fit(tmp_path, monkeypatch):
    """Each built-in source's entry refuses images that exceed the available memory (1 MiB
    here), the folder source from its label table alone."""
    monkeypatch.setattr(mtvae.limits, "available_memory", lambda: 2**20)
    (tmp_path / "labels.csv").write_text("file,y\n" + "".join(f"{i}.png,1\n" for i in range(40)))
    for source in ("shapes", "digits", "mnist", f"folder:{tmp_path}"):
        cfg = DataConfig(source=source, n_train=4000, n_val=100, n_test=100, image_size=128)
        with pytest.raises(UserError, match="of memory"):
            check_source_memory(cfg)
    check_source_memory(DataConfig(source=f"folder:{tmp_path}", image_size=16))  # 30 KiB


def test_a_registered_source_is_listed_and_trains_from_the_cli(tiny, tmp_path, capsys):
    assert main(["datasets"]) == 0
    assert "tiny" in [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    settings = ["data.image_size=16", "model.latent_dim=2", "model.encoder.arch=mlp",
                "model.encoder.hidden=[16]", "train.epochs=1", "train.progress=false"]
    argv = ["train", "--model", "vae", "--data", "tiny", "--out", str(tmp_path / "run")]
    assert main(argv + [a for s in settings for a in ("--set", s)]) == 0
    assert tiny and set(tiny) == {"tiny"}  # its memory check ran before loading


def test_shapes_counts_an_unset_split_at_the_size_it_will_generate(monkeypatch):
    from mtvae.data.shapes import DEFAULT_SIZES

    seen = []
    monkeypatch.setattr(sources, "check_memory", lambda n_bytes, what, fix: seen.append(what))
    check_source_memory(DataConfig(source="shapes", n_train=100, image_size=32))
    # 100 set + the default validation and test splits, not 100 alone
    assert seen == [f"Generating {100 + DEFAULT_SIZES['val'] + DEFAULT_SIZES['test']:,} "
                    "'shapes' images of 32x32"]
