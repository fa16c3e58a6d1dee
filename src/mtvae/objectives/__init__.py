"""Likelihoods, KL schedules and task weighting."""
