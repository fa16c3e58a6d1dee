"""Shared test settings."""

import os

import matplotlib
import torch

matplotlib.use("Agg")

# Under pytest-xdist each worker gets one intra-op thread so workers don't oversubscribe cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
