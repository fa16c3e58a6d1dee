"""Fixtures for the data tests: a private measurement cache shared by one test session."""

import pytest


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    """Point ``$MTVAE_CACHE`` at a fresh directory for the session (measured once, then reused)."""
    path = tmp_path_factory.mktemp("mtvae-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MTVAE_CACHE", str(path))
        yield path
