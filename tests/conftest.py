"""Shared test settings."""

import matplotlib
import pytest
import torch
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")

# One thread per test process (torch intra-op and BLAS/OpenMP for numpy and scikit-learn):
# with pytest-xdist's two workers on two cores this avoids oversubscription, and the small
# models and arrays in tests run fastest single-threaded anyway.
torch.set_num_threads(1)
threadpool_limits(1)


@pytest.fixture(autouse=True, scope="session")
def _reference_cache(tmp_path_factory):
    """Keep the reference classifiers of the gen metrics out of the user's ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MTVAE_CACHE", str(tmp_path_factory.mktemp("mtvae-cache")))
    yield
    patch.undo()
