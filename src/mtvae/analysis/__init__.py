"""Analysis: a study's stored results turned into estimates (statistics, hypotheses, pooled
effects, tested changes, learnability). Above :mod:`mtvae.study` (which runs studies and stores
results) and below :mod:`mtvae.report` (which renders :class:`~mtvae.analysis.results.StudyResults`)."""
