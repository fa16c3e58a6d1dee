"""Fixtures for the data tests: a private measurement cache shared by one test session, and
the image files decoded by a test under a private image cache."""

import pytest


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    """Point ``$MTVAE_CACHE`` at a fresh directory for the session (measured once, then reused)."""
    path = tmp_path_factory.mktemp("mtvae-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MTVAE_CACHE", str(path))
        yield path


@pytest.fixture
def decodes(tmp_path, monkeypatch):
    """The names of the image files decoded (in any thread) since the test started, under a
    private cache (``tmp_path/cache``, as the ``cache`` fixtures name it)."""
    import mtvae.data.image_files

    monkeypatch.setenv("MTVAE_CACHE", str(tmp_path / "cache"))
    seen = []
    real = mtvae.data.image_files.decode_image

    def counting(path, fmt):
        seen.append(path.name)
        return real(path, fmt)

    monkeypatch.setattr(mtvae.data.image_files, "decode_image", counting)
    return seen
