"""The IDX reader: round trips on small generated files, plain and gzipped, and every error."""

import gzip

import numpy as np
import pytest

from mtvae.data.idx import load_image_label_pair, parse_idx, read_idx, write_idx
from mtvae.errors import UserError


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_uint8_images_round_trip_plain_and_gzipped(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    write_idx(tmp_path / name, images)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.uint8 and back.shape == (7, 5, 4)
    np.testing.assert_array_equal(back, images)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\0\0")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_other_types_round_trip_in_native_byte_order(tmp_path, dtype):
    data = (np.arange(-6, 6).reshape(3, 4) * 3).astype(dtype)
    write_idx(tmp_path / "a.idx", data)
    back = read_idx(tmp_path / "a.idx")
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, data)


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(tmp_path / "labels-idx1-ubyte", labels, compress=True)  # no .gz in the name
    np.testing.assert_array_equal(read_idx(tmp_path / "labels-idx1-ubyte"), labels)


def _raw(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\0\0", "truncated: 2 bytes"),
        (b"PK\3\4 not idx at all", "not an IDX file"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 9]), "not an IDX file"),
        (bytes([0, 0, 0x08, 3, 0, 0, 0, 2]), "truncated inside its header"),
        (_raw(np.zeros((4, 3, 3)))[:-5], "truncated: shape (4, 3, 3) needs 36 bytes of data, found 31"),
        (_raw(np.zeros(5)) + b"\0\0", "2 unexpected bytes after its data"),
        (gzip.compress(_raw(np.zeros((9, 9))), mtime=0)[:-12], "cannot be decompressed"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(UserError, match="bad-idx3-ubyte") as info:
        read_idx(path)
    assert message in str(info.value)


def test_truncated_gzipped_data_is_reported_as_truncated(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(_raw(np.zeros((10, 4, 4)))[:-16]))  # valid gzip, short data
    with pytest.raises(UserError, match=r"'.*short.gz' is truncated"):
        read_idx(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")
    with pytest.raises(UserError, match="is a directory"):
        read_idx(tmp_path)


def test_image_label_pairs_are_checked_together(tmp_path):
    images, labels = tmp_path / "img", tmp_path / "lab"
    write_idx(images, np.zeros((4, 2, 2), np.uint8))
    write_idx(labels, np.array([0, 1, 2], np.uint8))
    with pytest.raises(UserError, match="holds 4 images but .* holds 3 labels"):
        load_image_label_pair(images, labels, 10)
    write_idx(labels, np.array([0, 1, 12, 3], np.uint8))
    with pytest.raises(UserError, match=r"label 12 at index 2, outside the 10 classes 0..9"):
        load_image_label_pair(images, labels, 10)
    write_idx(labels, np.array([0, 1, 2, 3], np.uint8))
    x, y = load_image_label_pair(images, labels, 10)
    assert x.shape == (4, 2, 2) and y.dtype == np.int64
    with pytest.raises(UserError, match=r"expected uint8 images of shape \(N, H, W\)"):
        load_image_label_pair(labels, labels, 10)


def test_parse_idx_reads_bytes_directly():
    assert parse_idx(_raw(np.arange(6).reshape(2, 3))).tolist() == [[0, 1, 2], [3, 4, 5]]


def _header(type_code: int, *dims: int) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


BIG = 2**32 - 1  # the largest dimension an IDX header can declare


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # an empty array (one dimension 0) whose other dimensions overflow numpy's size limit:
        # the header and data agree (0 bytes), but numpy's reshape raised a ValueError
        (_header(0x08, 0, BIG, BIG), f"impossible shape (0, {BIG}, {BIG})"),
        (gzip.compress(_header(0x0D, 0, BIG, BIG, BIG), mtime=0), "impossible shape"),
        # sizes beyond int64 are counted exactly, not wrapped around into nonsense
        (_header(0x08, BIG, BIG), f"needs {BIG * BIG} bytes of data, found 0"),
        (_header(0x0E, BIG, BIG, BIG) + b"\0" * 8, f"needs {BIG**3 * 8} bytes of data, found 8"),
    ],
    ids=["empty-with-huge-dims", "gzipped-empty-with-huge-dims", "beyond-int64",
         "far-beyond-int64"],
)
def test_headers_declaring_absurd_sizes_are_refused(content, message):
    with pytest.raises(UserError, match="IDX file '<bytes>'") as info:
        parse_idx(content)
    assert message in str(info.value)
