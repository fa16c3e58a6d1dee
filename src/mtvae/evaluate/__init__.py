"""Evaluation: one module per metric family, pure array functions plus thin model wrappers."""
