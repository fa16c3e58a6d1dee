"""Property-based fuzzing of the file readers: any bytes give an array or a UserError."""

import gzip
import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from mtvae.data.idx import parse_idx
from mtvae.data.npz import load_npz
from mtvae.errors import UserError

BIG = 2**32 - 1  # the largest dimension an IDX header can declare
DIMS = st.one_of(st.integers(0, 4), st.sampled_from([2**31, BIG]))  # absurd sizes too
IDX_HEADERS = st.tuples(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]),
                        st.integers(0, 3), st.lists(DIMS, max_size=3))


def _idx_bytes(type_code: int, ndim: int, dims: list[int], body: bytes) -> bytes:
    header = bytes([0, 0, type_code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + body


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash_the_idx_parser(raw):
    try:
        array = parse_idx(raw)
    except UserError as err:
        assert "IDX" in str(err)
    else:
        assert isinstance(array, np.ndarray)


@settings(max_examples=400, deadline=None)
@given(IDX_HEADERS, st.binary(max_size=80), st.booleans())
# the bug this test found: an empty array with absurd other dimensions (numpy's reshape raised)
@example((0x08, 3, [0, BIG, BIG]), b"", False)
@example((0x0D, 3, [0, BIG, BIG]), b"", True)
@example((0x08, 2, [BIG, BIG]), b"", False)  # a size beyond int64
def test_structured_idx_headers_parse_exactly_or_fail_clearly(header, body, compress):
    raw = _idx_bytes(*header, body)
    if compress:
        raw = gzip.compress(raw)
    try:
        array = parse_idx(raw)
    except UserError:
        return
    type_code, ndim, dims = header
    assert array.ndim == ndim
    assert list(array.shape[: min(ndim, len(dims))]) == dims[:ndim]
    assert array.nbytes == len(raw if not compress else gzip.decompress(raw)) - 4 - 4 * ndim


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=200))
def test_random_bytes_as_npz_are_refused_with_a_message(tmp_path, raw):
    path = tmp_path / "user.npz"
    path.write_bytes(raw)
    try:
        load_npz(path)
    except UserError as err:
        assert str(path) in str(err)


DAMAGES = ("intact", "truncated", "flipped", "truncated and flipped")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(DAMAGES), st.data())
def test_damaged_valid_npz_is_refused_or_loaded(tmp_path, damage, data):
    """Both outcomes are reached by construction: an intact archive must load (with its own
    values), a truncated one must be refused (its end-of-archive record is gone); byte flips
    land anywhere and may hit fields the reader ignores, so either outcome is allowed there."""
    rng = np.random.default_rng(0)
    x = rng.random((12, 4)).astype(np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y_t=rng.integers(0, 3, 12))
    raw = bytearray(buffer.getvalue())
    cut = data.draw(st.integers(0, len(raw) - 1)) if "truncated" in damage else len(raw)
    flips = (data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4))
             if "flipped" in damage else [])
    for i in flips:
        raw[i] ^= 0xFF
    path = tmp_path / "user.npz"
    path.write_bytes(bytes(raw[:cut]))
    try:
        dataset = load_npz(path)
    except UserError as err:
        event(f"{damage}: refused")
        assert str(path) in str(err)
        assert damage != "intact", err
    except zipfile.BadZipFile as err:  # pragma: no cover - must be wrapped
        raise AssertionError(f"unwrapped {err!r}") from None
    else:
        event(f"{damage}: loaded")
        assert "truncated" not in damage
        splits = (dataset.train, dataset.val, dataset.test)
        assert sum(len(split) for split in splits) == 12
        values = np.concatenate([split.x.numpy().ravel() for split in splits])
        if damage == "intact":
            np.testing.assert_allclose(np.sort(values), np.sort(x.ravel()))
        assert np.isfinite(values).all()


def test_a_flipped_zip_version_byte_is_refused_not_a_crash(tmp_path):
    """Found by the fuzz test above: byte 713 of this archive is the version a central-directory
    entry needs to extract; flipped, zipfile raises NotImplementedError ("zip file version
    21.0"), which must reach the user as a UserError naming the file."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(buffer, x=rng.random((12, 4)).astype(np.float32), y_t=rng.integers(0, 3, 12))
    raw = bytearray(buffer.getvalue())
    raw[713] ^= 0xFF
    path = tmp_path / "user.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="Cannot read the npz file"):
        load_npz(path)
