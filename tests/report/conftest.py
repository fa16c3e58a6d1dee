"""The report tests' fixtures: synthetic stored studies, defined in stored_study.py (test
modules import its helpers from there: a bare ``conftest`` import would find whichever test
directory's conftest was imported first)."""

from stored_study import (  # noqa: F401  (fixtures, found by pytest in this namespace)
    borderline_study,
    hostile,
    make_study,
    single_task_study,
    synthetic_study,
)
