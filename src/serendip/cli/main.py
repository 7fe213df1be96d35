"""`serendip` entry point. Each command lives in its own module with a `register(app)`
function, so the command modules stay small and independent."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="serendip",
    help="Serendip: analyse a platform's data, study every recommender on it, serve the winner.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Order = order in `serendip --help`.
_COMMAND_MODULES = (
    "generate",
    "analyze",
    "split",
    "evaluate",
    "models",
    "select",
    "study",
    "demo",
    "serve",
    "export",
    "privacy",
    "assess",
    "report",
    "operations",
    "experiments",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(f"serendip.cli.{_name}").register(app)


@app.callback()
def _root() -> None:
    """Serendip command line."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
