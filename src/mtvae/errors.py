"""User-facing errors.

Anything the user can fix (a bad config value, an unknown name, a missing file) is raised as a
:class:`UserError`. The CLI prints its message and exits with status 2, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """An error caused by the user's input, with a message that says how to fix it."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """Build the standard error for an unknown model/dataset/key name."""
    choices = sorted(choices)
    return UserError(
        f"Unknown {kind} '{name}'.{did_you_mean(name, choices)} "
        f"Available: {', '.join(choices)}."
    )
