"""The training loop, checkpoints and loggers."""
