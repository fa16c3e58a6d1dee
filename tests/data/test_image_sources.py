"""The celeba:DIR and folder:PATH sources: layouts, decoding, the uint8 cache, every bad input."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch
from image_layouts import ATTRIBUTES, celeba_values, face, write_celeba, write_folder
from PIL import Image

from mtvae.config import DataConfig
from mtvae.data.byte_images import ByteImages
from mtvae.data.image_files import ImageFormat, decode_image
from mtvae.data.loader import InMemoryLoader
from mtvae.data.sources import check_task_names, load_dataset
from mtvae.errors import UserError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private image cache per test, so decodes can be counted."""
    path = tmp_path / "cache"
    monkeypatch.setenv("MTVAE_CACHE", str(path))
    return path


def celeba(root, **data) -> DataConfig:
    return DataConfig(source=f"celeba:{root}", **data)


# ----------------------------------------------------------------------------- celeba
def test_celeba_gives_40_binary_tasks_official_splits_and_uint8_images(tmp_path, cache):
    root = write_celeba(tmp_path / "celeba")
    data = load_dataset(celeba(root))
    assert list(data.tasks) == ATTRIBUTES
    assert {s.kind for s in data.tasks.values()} == {"binary"}
    assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 4)
    x = data.train.x
    assert isinstance(x, ByteImages) and x.stored.dtype == torch.uint8
    assert tuple(x.shape) == (16, 3, 64, 64)  # celeba's default side, RGB
    batch = x[:2]
    assert batch.dtype == torch.float32 and 0.0 <= float(batch.min()) <= float(batch.max()) <= 1.0
    # each image's grey level tells its file: its targets are that file's -1/1 values as 0/1
    values = celeba_values(24)
    for row in range(len(data.train)):
        i = round((float(x[row].mean()) * 255 - 20) / 8)
        expected = (values[i] > 0).astype(np.float32)
        got = np.array([float(data.train.targets[a][row]) for a in ATTRIBUTES])
        assert np.array_equal(got, expected), row
        assert i < 16  # official train partition: the first 16 files


def test_celeba_split_sizes_take_a_prefix_of_the_seeded_order(tmp_path, cache):
    root = write_celeba(tmp_path / "celeba")
    full = load_dataset(celeba(root, image_size=16))
    small = load_dataset(celeba(root, image_size=16, n_train=5, n_val=2))
    assert (len(small.train), len(small.val), len(small.test)) == (5, 2, 4)
    assert torch.equal(small.train.x.stored, full.train.x.stored[:5])
    assert torch.equal(small.train.targets["Smiling"], full.train.targets["Smiling"][:5])
    with pytest.raises(UserError, match="data.n_train=17, but 'celeba' has only 16 train"):
        load_dataset(celeba(root, image_size=16, n_train=17))


def test_decoding_crops_the_centre_then_resizes(tmp_path):
    path = tmp_path / "face.png"
    Image.fromarray(face(5)).save(path)  # lossless: the known answer is exact
    pixels = decode_image(path, ImageFormat(32, 3, crop=148))
    assert pixels.shape == (3, 32, 32) and pixels.dtype == np.uint8
    assert (pixels == 20 + 8 * 5).all()  # the red border is cropped away
    grey = decode_image(path, ImageFormat(16, 1, crop=None))  # largest square: 178 keeps red
    assert grey.shape == (1, 16, 16) and int(grey[0, 8, 0]) != 20 + 8 * 5


def test_a_second_load_reads_the_cache_and_a_changed_file_decodes_again(tmp_path, cache, decodes):
    root = write_celeba(tmp_path / "celeba")
    first = load_dataset(celeba(root, image_size=16))
    assert len(decodes) == 24
    second = load_dataset(celeba(root, image_size=16))
    assert len(decodes) == 24  # nothing decoded: the memory-mapped cache
    assert torch.equal(first.train.x.stored, second.train.x.stored)
    manifest = json.loads(next((cache / "images").glob("celeba-*.json")).read_text())
    sizes = {name: size for name, size, _ in manifest["files"]}
    assert sizes["000001.jpg"] == (root / "img_align_celeba" / "000001.jpg").stat().st_size
    Image.fromarray(face(23)).save(root / "img_align_celeba" / "000001.jpg", quality=95)
    third = load_dataset(celeba(root, image_size=16))
    assert len(decodes) == 48  # the changed file's size/time: decoded again
    assert len(list((cache / "images").glob("celeba-*.npy"))) == 1  # the stale copy removed
    assert not torch.equal(first.train.x.stored, third.train.x.stored)
    load_dataset(celeba(root, image_size=32))  # another size: another cache entry
    assert len(decodes) == 72


def test_the_first_decode_shows_a_progress_bar_on_a_terminal_only(tmp_path, cache, capsys,
                                                                  monkeypatch):
    root = write_celeba(tmp_path / "celeba")
    load_dataset(celeba(root, image_size=16, n_train=2))
    assert "decoding images" not in capsys.readouterr().err  # not a terminal: no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    load_dataset(celeba(root, image_size=24))
    err = capsys.readouterr().err
    assert "decoding images" in err and "24/24" in err
    load_dataset(celeba(root, image_size=24))  # from the cache: nothing to show
    assert "decoding images" not in capsys.readouterr().err


def test_an_edited_table_replaces_its_cache_entry(tmp_path, cache, decodes):
    root = write_folder(tmp_path / "imgs")
    cfg = DataConfig(source=f"folder:{root}", image_size=16)
    load_dataset(cfg)
    table = root / "labels.csv"
    table.write_text("\n".join(table.read_text().splitlines()[:-1]) + "\n")  # one row less
    data = load_dataset(cfg)
    assert len(decodes) == 24 + 23 and len(data.train) + len(data.val) + len(data.test) == 23
    assert len(list((cache / "images").glob("folder-*.npy"))) == 1


def test_an_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    root = write_celeba(tmp_path / "celeba")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("MTVAE_CACHE", str(blocker))
    with pytest.warns(UserWarning, match="cannot write the image cache"):
        data = load_dataset(celeba(root, image_size=16))
    assert len(data.train) == 16


def test_byte_images_stay_bytes_through_subsets_and_give_float_batches(tmp_path, cache):
    data = load_dataset(celeba(write_celeba(tmp_path / "c"), image_size=16))
    part = data.train.subset(torch.tensor([3, 1]))
    assert isinstance(part.x, ByteImages) and torch.equal(part.x.stored, data.train.x.stored[[3, 1]])
    batches = list(InMemoryLoader(data.train, 8, shuffle=True, generator=torch.Generator()))
    assert all(b.x.dtype == torch.float32 and b.x.shape[1:] == (3, 16, 16) for b in batches)
    assert torch.allclose(torch.cat([b.x for b in batches]).sum(0),  # every image once
                          (data.train.x.stored.float() / 255).sum(0))


# ----------------------------------------------------------------------------- folder
def test_folder_infers_kinds_keeps_empty_cells_missing_and_resizes_any_image(tmp_path, cache):
    root = write_folder(tmp_path / "imgs")
    data = load_dataset(DataConfig(source=f"folder:{root}", image_size=16))
    kinds = {t: (s.kind, s.n_classes) for t, s in data.tasks.items()}
    assert kinds == {"kind": ("binary", None), "count": ("categorical", 3),
                     "size": ("regression", None), "colour": ("categorical", 3)}
    assert "0=blue, 1=green, 2=red" in data.tasks["colour"].description
    assert (len(data.train), len(data.val), len(data.test)) == (20, 2, 2)  # seeded 80/10/10
    assert tuple(data.train.x.shape[1:]) == (3, 16, 16)  # RGB files
    for split in (data.train, data.val, data.test):
        for row in range(len(split)):
            i = round(float(split.x[row].mean()) * 255 / 10)  # the grey level tells the row
            assert bool(split.masks["kind"][row]) == (i % 5 != 4)
            assert bool(split.masks["size"][row]) == (i % 7 != 6)
            assert int(split.targets["count"][row]) == i % 3
            colour = ("red", "green", "blue")[i % 3]
            assert int(split.targets["colour"][row]) == ["blue", "green", "red"].index(colour)


def test_folder_of_grey_images_has_one_channel_and_a_split_column(tmp_path, cache):
    root = write_folder(tmp_path / "imgs", grey=True)
    table = root / "labels.csv"
    lines = table.read_text().splitlines()
    split = ["train"] * 16 + ["val"] * 4 + ["test"] * 4
    table.write_text("\n".join([lines[0] + ",split"]
                               + [f"{line},{s}" for line, s in zip(lines[1:], split, strict=True)]))
    data = load_dataset(DataConfig(source=f"folder:{table}", image_size=16))
    assert tuple(data.train.x.shape) == (16, 1, 16, 16) and "split" not in data.tasks
    assert {round(float(data.val.x[r].mean()) * 25.5) for r in range(4)} == {16, 17, 18, 19}


def test_a_sidecar_declares_kinds_as_for_npz(tmp_path, cache):
    root = write_folder(tmp_path / "imgs")
    table = root / "labels.csv"
    table.write_text(table.read_text().replace("img01.jpg,1,1,", "img01.jpg,1,-4,"))
    (root / "labels.yaml").write_text(
        "tasks:\n  count: regression\n  colour: {kind: categorical, n_classes: 4}\n")
    data = load_dataset(DataConfig(source=f"folder:{root}", image_size=16))
    assert data.tasks["count"].kind == "regression"  # negative integers, declared quantities
    assert sorted(set(data.train.targets["count"].tolist())
                  | set(data.val.targets["count"].tolist())
                  | set(data.test.targets["count"].tolist())) == [-4.0, 0.0, 1.0, 2.0]
    assert data.tasks["colour"].n_classes == 4
    (root / "labels.yaml").write_text("tasks: {count: regression, colour: binary}\n")
    with pytest.raises(UserError, match=r"Column 'colour' of .* holds text \(e.g. '\w+'\), but "
                                        "the sidecar declares it binary; text labels are "
                                        "categorical"):
        load_dataset(DataConfig(source=f"folder:{root}", image_size=16))


def test_unreadable_images_are_named_or_skipped_and_counted(tmp_path, cache):
    root = write_folder(tmp_path / "imgs")
    (root / "img01.jpg").write_bytes(b"not an image")
    (root / "img02.png").write_bytes((root / "img04.png").read_bytes()[:60])  # truncated
    cfg = DataConfig(source=f"folder:{root}", image_size=16)
    with pytest.raises(UserError, match=r"2 image file\(s\) cannot be decoded, the first "
                                        r"'.*img01.jpg'.*data.skip_unreadable=true"):
        load_dataset(cfg)
    with pytest.warns(UserWarning, match=r"left out 2 image file\(s\) .* the first '.*img01.jpg'"):
        data = load_dataset(cfg.model_copy(update={"skip_unreadable": True}))
    assert len(data.train) + len(data.val) + len(data.test) == 22
    assert "2 unreadable image(s) skipped" in data.description


def _edit(path, old, new):
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(("change", "needle"), [
    (lambda r: (r / "list_attr_celeba.txt").unlink(), "has no list_attr_celeba.txt"),
    (lambda r: (r / "list_eval_partition.txt").unlink(), "has no list_eval_partition.txt"),
    (lambda r: [p.unlink() for p in (r / "img_align_celeba").iterdir()] and
     (r / "img_align_celeba").rmdir(), "has no img_align_celeba"),
    (lambda r: (r / "img_align_celeba" / "000007.jpg").unlink(),
     r"1 image file\(s\) named in '.*list_attr_celeba.txt' are not in .*: 000007.jpg"),
    (lambda r: _edit(r / "list_attr_celeba.txt", "24\n", "25\n"),
     "says it lists 25 images but lists 24"),
    (lambda r: _edit(r / "list_attr_celeba.txt", "000003.jpg -1", "000003.jpg  0"),
     "line 5 holds a value other than -1 or 1"),
    (lambda r: _edit(r / "list_attr_celeba.txt", "000004.jpg", "000003.jpg"),
     "names the image '000003.jpg' twice"),
    (lambda r: _edit(r / "list_eval_partition.txt", "000002.jpg 0\n", ""),
     "gives no split for 1 image"),
    (lambda r: _edit(r / "list_eval_partition.txt", "000002.jpg 0", "000002.jpg 3"),
     "line 2 is '000002.jpg 3'"),
    (lambda r: (r / "img_align_celeba" / "000005.jpg").write_bytes(b"\xff\xd8 broken"),
     r"cannot be decoded, the first '.*000005.jpg'"),
])
def test_bad_celeba_layouts_are_clear_errors(tmp_path, cache, change, needle):
    root = write_celeba(tmp_path / "celeba")
    if "line 5" in needle:  # make sure the edited line starts with -1 as the test assumes
        lines = (root / "list_attr_celeba.txt").read_text().splitlines()
        lines[4] = "000003.jpg -1" + lines[4][13:]
        (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    change(root)
    with pytest.raises(UserError, match=needle):
        load_dataset(celeba(root, image_size=16))


def test_an_unknown_attribute_lists_the_40_before_decoding(tmp_path, cache, decodes):
    root = write_celeba(tmp_path / "celeba")
    with pytest.raises(UserError) as info:
        check_task_names(celeba(root), ["Smiling", "Smilling"])
    message = str(info.value)
    assert "Unknown task of celeba:" in message and "Did you mean 'Smiling'?" in message
    assert all(a in message for a in ATTRIBUTES) and not decodes


@pytest.mark.parametrize(("table", "needle"), [
    ("name,kind\na.png,1\n", "has no file-name column"),
    ("filename,kind\nimg04.png,1\nimg04.png,0\n", "names 'img04.png' twice"),
    ("filename,kind\nimg04.png,1\nnope.png,0\n",
     r"1 image file\(s\) named in '.*labels.csv' are not in .*: nope.png"),
    ("filename,kind\nimg04.png,1\nimg01.jpg,yes please\nimg02.png,2\n",
     "Column 'kind' of .* mixes numbers .* and text"),
    ("filename,kind\nimg04.png,1\nimg01.jpg,-1\nimg02.png,2\n", "holds negative integers"),
    ("filename,kind\nimg04.png,1\nimg01.jpg,nan\nimg02.png,2\n", "holds 'nan' on line 3"),
    ("filename,kind\nimg04.png,1,3\n", "Line 2 .* has 3 cells but the header has 2 columns"),
    ("filename,kind\nimg04.png,\nimg01.jpg,\n", "Column 'kind' of .* has no labels"),
    ("filename,kind,split\nimg04.png,1,train\nimg01.jpg,0,dev\n", "holds 'dev' on line 3"),
    ("filename,kind\n", "has a header but no rows"),
])
def test_bad_label_tables_are_clear_errors(tmp_path, cache, table, needle):
    root = write_folder(tmp_path / "imgs")
    (root / "labels.csv").write_text(table)
    with pytest.raises(UserError, match=needle):
        load_dataset(DataConfig(source=f"folder:{root}", image_size=16))


def test_folder_paths_missing_table_or_sidecar_task(tmp_path, cache):
    root = write_folder(tmp_path / "imgs")
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(DataConfig(source=f"folder:{tmp_path / 'nothing'}"))
    (root / "labels.yaml").write_text("tasks: {age: regression}\n")
    with pytest.raises(UserError, match="declares task 'age' but the table has no column"):
        load_dataset(DataConfig(source=f"folder:{root}", image_size=16))
    (root / "labels.yaml").unlink()
    (root / "labels.csv").rename(root / "other.csv")
    with pytest.raises(UserError, match="labels.csv' does not exist"):
        load_dataset(DataConfig(source=f"folder:{root}", image_size=16))
    data = load_dataset(DataConfig(source=f"folder:{root / 'other.csv'}", image_size=16))
    assert len(data.train) == 20


def test_celeba_at_64_fits_a_24_gib_machine_as_uint8(tmp_path, monkeypatch):
    """The full CelebA (202,599 images) at 64x64 passes the memory check on a 24 GiB machine
    (20 GiB available); as float32 pool plus splits (the other sources' accounting) it would
    not."""
    import mtvae.limits
    from mtvae.data.sources import check_source_memory

    root = tmp_path / "celeba"
    root.mkdir()
    (root / "list_attr_celeba.txt").write_text("202599\n" + " ".join(ATTRIBUTES) + "\n")
    monkeypatch.setattr(mtvae.limits, "available_memory", lambda: 20 * 2**30)
    assert 2 * 202_599 * 3 * 64 * 64 * 4 > mtvae.limits.MEMORY_SHARE * 20 * 2**30
    check_source_memory(celeba(root))  # no error
    monkeypatch.setattr(mtvae.limits, "available_memory", lambda: 2 * 2**30)
    with pytest.raises(UserError, match="Loading 202,599 CelebA images of 64x64 RGB"):
        check_source_memory(celeba(root))
    check_source_memory(celeba(root, n_train=1000, n_val=100, n_test=100))


def test_celeba_default_image_size_is_64_unless_set():
    assert DataConfig(source="celeba:x").image_size == 64
    assert DataConfig(source="celeba:x", image_size=32).image_size == 32
    assert DataConfig(source="folder:x").image_size == DataConfig().image_size == 32


def test_sources_resolve_paths_for_studies(tmp_path, monkeypatch):
    from mtvae.data.sources import absolute_source

    monkeypatch.chdir(tmp_path)
    assert absolute_source("celeba:faces") == f"celeba:{tmp_path / 'faces'}"
    assert absolute_source("folder:x/labels.csv") == f"folder:{tmp_path / 'x' / 'labels.csv'}"
    assert absolute_source("digits") == "digits"
    assert os.path.isabs(absolute_source("npz:d.npz")[4:])


def test_skip_unreadable_is_recorded_only_when_set_so_run_ids_stay():
    """config.yaml (and so a study's run ids, a hash of it) gains no key at its default."""
    assert "skip_unreadable" not in DataConfig().model_dump(mode="json")
    on = DataConfig(skip_unreadable=True).model_dump(mode="json")
    assert on["skip_unreadable"] is True and DataConfig(**on) == DataConfig(skip_unreadable=True)
