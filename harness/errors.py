"""The errors promptvcr raises for problems a user can fix.

::

    PromptVCRError                  every error here; its message says what to run or change next
    ├── InputError                  a case or eval file is wrong; carries file:line and a JSON pointer per problem
    ├── ConfigError                 a command-line flag, environment variable or endpoint setting is wrong
    ├── LocalServerError            the local llama.cpp server could not be started or did not answer
    └── InternalError               a bug in promptvcr met while reading a user's file (exit 3, not 2)

``reading`` is the one place that turns whatever goes wrong while a user's file is loaded or rendered into one of
these: the file's own problems are found and raised as InputError where they are read (harness.load._yamlsrc, the
schemas, harness.load._render); anything else that escapes is ours, and says so with a bug-report hint.

Per-sample failures (HTTP errors, timeouts, missing recordings) are not exceptions to the user: they become
``errored`` result rows with an error class (see ``harness.run._runner``). openai's own exceptions are never wrapped.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class PromptVCRError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file."""

    path: Path
    line: int
    pointer: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        at = f" at {self.pointer}" if self.pointer else ""
        return f"{where}:{at} {self.message}" if at else f"{where}: {self.message}"


class InputError(PromptVCRError):
    """One or more problems in case or eval files; nothing is sent while any exists."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.path), p.line, p.pointer))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the input files; no request was sent:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class ConfigError(PromptVCRError):
    """A flag, environment variable or endpoint setting is wrong."""


class LocalServerError(PromptVCRError):
    """The local llama.cpp server could not be started or did not answer."""


class InternalError(PromptVCRError):
    """An exception promptvcr did not expect while reading a file: our bug, not the file's."""


def unknown_name(what: str, name: str, known: Sequence[str]) -> str:
    """A registry's word for a name it does not have: the closest one it has, and all of them."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(known)})"


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Load or render ``path`` inside this: any exception but our own errors becomes an InternalError citing it."""
    try:
        yield
    except PromptVCRError:
        raise
    except RecursionError:  # a user's file nested past what any step can follow (load._yamlsrc counts the depth)
        raise InputError([Problem(path, 1, "", "nested too deeply to read")]) from None
    except Exception as exc:
        raise InternalError(
            f"{path}: internal error while reading this file: {type(exc).__name__}: {exc} — a bug in promptvcr, not "
            "in the file: please report it with the file attached (`promptvcr validate` shows the same)"
        ) from exc
