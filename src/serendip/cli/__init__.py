"""Command-line interface (typer). Thin: parse, call the library, print."""
