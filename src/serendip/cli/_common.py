"""Shared CLI plumbing: errors as one readable line, a rich console, progress bars."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from serendip.errors import SerendipError

F = TypeVar("F", bound=Callable[..., Any])

console = Console(stderr=True)


def cli_errors(func: F) -> F:
    """Turn a `SerendipError` (a user's mistake) into one line on stderr and exit code 1.

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SerendipError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=1) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            print(f"error: {exc.strerror}: {exc.filename}", file=sys.stderr)
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def progress(transient: bool = False) -> Progress:
    """A rich progress bar with the columns every long command uses."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
