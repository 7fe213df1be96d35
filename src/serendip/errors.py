"""The error hierarchy. Every error a user can cause is a `SerendipError` with a message
they can act on; the CLI prints it as one line, the API answers it with a 4xx."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import ValidationError


class SerendipError(Exception):
    """Base class of every error Serendip raises on purpose."""


class DataError(SerendipError):
    """Malformed or inconsistent input data.

    Carries where the problem is (file, 1-based line, field) so the message names it.
    `row` (1-based data row) replaces `line` for formats without lines, such as Parquet.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        row: int | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.line = line
        self.field = field
        self.row = row
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.problem}" if where else self.problem


class ConfigError(SerendipError):
    """Invalid configuration or hyperparameters."""


class NotFittedError(SerendipError):
    """A model was used before `fit` (or `load`)."""


class CapacityError(SerendipError):
    """A method was asked to hold more than it can (said before it starts, not an OOM kill)."""


def config_error_from(
    exc: ValidationError,
    subject: str,
    *,
    valid: Iterable[str] | None = None,
    location: Callable[[tuple[int | str, ...]], str] | None = None,
) -> ConfigError:
    """One readable `ConfigError` from pydantic's `ValidationError`: "<subject>: <where>: <what>;
    ..." with every problem named by its (dotted) location, unknown keys as "unknown setting
    'x'", and the valid names appended when given. Raise it `from None`: the pydantic trace adds
    nothing a user can act on.
    """
    where = location or (lambda loc: ".".join(str(p) for p in loc) or "config")
    problems = []
    for e in exc.errors():
        if e["type"] == "extra_forbidden":
            problems.append(f"unknown setting '{where(e['loc'])}'")
        else:
            problems.append(f"{where(e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}")
    msg = f"{subject}: " + "; ".join(problems)
    if valid is not None:
        msg += f" (valid: {', '.join(valid)})"
    return ConfigError(msg)
