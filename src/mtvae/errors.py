"""User-facing errors.

Anything the user can fix (a bad config value, an unknown name, a missing file) is raised as a
:class:`UserError`. The CLI prints its message and exits with status 2, never a traceback.
"""

from __future__ import annotations

import difflib
import os
import reprlib
import stat
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


class WriteError(UserError):
    """A file could not be written (full disk, no permission, read-only file system...).

    Writes are atomic, so the previous version of the file, if any, is still intact. The
    message ends with the next step, which callers that know more can replace
    (:meth:`with_next_step`), e.g. with how to resume a training run.
    """

    def __init__(self, path: str, cause: str, fix: str,
                 next_step: str = "then run the command again") -> None:
        self.path, self.cause, self.fix = str(path), cause, fix
        super().__init__(
            f"Cannot write '{path}': {cause}. {fix}, {next_step}; the previous version of "
            "the file, if any, is intact."
        )

    def with_next_step(self, next_step: str) -> WriteError:
        """The same error, ending with ``next_step`` instead of "run the command again"."""
        return WriteError(self.path, self.cause, self.fix, next_step)


class Interrupted(KeyboardInterrupt):
    """The command was stopped by SIGINT or SIGTERM; it exits with status ``128 + signum``."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        super().__init__(signum)
        self.signum = signum
        self.status = 128 + signum
        self.message = message  # what was saved and how to continue, when known


def on_signal(signum: int, frame: object) -> None:
    """Signal handler of the CLI for SIGINT and SIGTERM: stop with :class:`Interrupted`.

    The trainer recognises this handler and defers it to the next batch boundary, where it
    writes a checkpoint first.
    """
    raise Interrupted(signum)


def quoted(value: object, limit: int = 80) -> str:
    """A short ``repr`` of ``value`` for quoting user input in a message: nesting, items and
    length are capped (an expanded YAML alias can be gigabytes), and it never fails."""
    shorter = reprlib.Repr()
    shorter.maxlevel, shorter.maxlist, shorter.maxtuple, shorter.maxdict = 3, 6, 6, 6
    shorter.maxstring = shorter.maxother = shorter.maxlong = limit
    try:
        text = shorter.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still quoted
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def not_a_file(path: object) -> str:
    """Why ``path``, expected to be a file, cannot be read as one: ``is a directory``, ``is
    not a regular file (a device, a pipe...)`` or ``does not exist``."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "does not exist"
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a device, a pipe or a socket)"
    return "cannot be read as a file"


def yaml_problem(exc: Exception) -> str:
    """One line saying why a YAML text could not be read (PyYAML's own message spans lines).

    For example ``could not determine a constructor for the tag '...python/object...' (line
    1, column 7)`` or ``it is not UTF-8 text``.
    """
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if problem is None:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"
