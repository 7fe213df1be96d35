"""`serendip export`: everything held about one user as JSON, read from the store without the
HTTP server; the same document as `GET /v1/users/{id}/export` (`UserExportPublic`). With
`SERENDIP_PSEUDONYM_SECRET` set (as for the server), USER is the platform's raw ID and is looked
up by its pseudonym."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from serendip.cli._common import cli_errors

#: Why the recommendations section is empty without --model-dir.
NO_MODEL_REASON = (
    "not computed: `serendip export` reads the store only; pass --model-dir for the current "
    "list with explanations"
)


def _open_store(url: str) -> Any:
    """The store at `url`, schema checked and never migrated (an export only reads)."""
    from serendip.errors import ConfigError
    from serendip.store import Store

    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ConfigError(f"--db {url}: no such database file")
    return Store.open(url, migrate=False)


@cli_errors
def export(
    user: Annotated[str, typer.Argument(help="External user ID to export.")],
    db: Annotated[
        str,
        typer.Option("--db", help="Store URL, e.g. sqlite:///./serendip-data/serendip.db."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON here (default: stdout).")
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir",
            help="A saved model (`serendip fit`, or a served version's artifact directory): add "
            "the user's current top-k with explanations, with the user's stored events as "
            "their history.",
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=10_000, help="With --model-dir: top-k.")] = 10,
) -> None:
    """Export everything stored about USER (profile, events, follows, unfollows, authored
    items, the sections not kept yet) as JSON; exit 1 when nothing is stored about them."""
    from serendip.errors import SerendipError
    from serendip.privacy.pseudonym import Pseudonymizer
    from serendip.service.export import sticky_assignments
    from serendip.service.schemas import ExportRecommendationsPublic, UserExportPublic
    from serendip.service.settings import Settings

    secret = Settings(db_url=db).pseudonym_secret
    stored = Pseudonymizer(None if secret is None else secret.get_secret_value().encode()).user(
        user
    )
    store = _open_store(db)
    try:
        data = store.export_user(stored)
        data["experiments"]["records"] += sticky_assignments(store, stored)
    finally:
        store.close()
    if not data.pop("has_data"):
        raise SerendipError(f"nothing is stored about '{user}' in {db}")
    data["user"] = user
    version: str | None = None
    recs = ExportRecommendationsPublic(k=k, items=[], reason=NO_MODEL_REASON)
    if model_dir is not None:
        version, recs = _recommendations(model_dir, stored, k, data["events"])
    doc = UserExportPublic.model_validate(
        {**data, "exported_at": time.time(), "model_version": version, "recommendations": recs}
    )
    text = doc.model_dump_json(indent=2)
    if out is None:
        typer.echo(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    typer.echo(
        f"exported '{user}': {len(doc.events):,} events, {len(doc.following):,} following, "
        f"{len(doc.followers):,} followers, {len(doc.recommendations.items)} recommendations "
        f"-> {out}",
        err=True,
    )


def _recommendations(
    model_dir: Path, user: str, k: int, events: list[dict[str, Any]]
) -> tuple[str | None, Any]:
    """The user's top-k from the model in `model_dir` (its directory name as the version),
    through the serving runtime the server uses, with the user's stored events replayed."""
    from serendip.service.export import current_recommendations
    from serendip.service.runtime import ModelRuntime
    from serendip.store import EventIn

    runtime = ModelRuntime(precompute=False, build_in_background=False, freeze_gc=False)
    runtime.load(model_dir, model_dir.resolve().name)
    runtime.on_events(
        [EventIn(e["event_id"], e["user"], e["item"], e["event"], e["timestamp"]) for e in events]
    )
    return current_recommendations(runtime, user, k)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("export")(export)
