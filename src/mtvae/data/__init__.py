"""Data sources, tasks, label policies and the in-memory loader."""
