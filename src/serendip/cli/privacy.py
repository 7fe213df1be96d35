"""`serendip erase`, `serendip consent`, `serendip purge`: the privacy operations without the
HTTP server (maintenance, cron). With a server running, use its API instead
(`DELETE /v1/users/{id}`, `PUT /v1/users/{id}/consent`): a server keeps its loaded model and
live state in memory, which only it can change at once.

The pseudonym secret is read from `SERENDIP_PSEUDONYM_SECRET`, as the server reads it, so the
commands take the platform's raw user IDs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from serendip.cli._common import cli_errors

_DB = Annotated[
    str, typer.Option("--db", help="Store URL, e.g. sqlite:///./serendip-data/serendip.db.")
]
OnOff = Literal["on", "off"]


def _open(db: str, artifacts: Path) -> tuple[Any, Any]:
    """(store, privacy context) for `db`, with the installation's erasure key."""
    from serendip.errors import ConfigError
    from serendip.service.privacy import make_context
    from serendip.service.settings import Settings
    from serendip.store import Store

    if db.startswith("sqlite:///") and ":memory:" not in db:
        path = Path(db.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ConfigError(f"--db {db}: no such database file")
    store = Store.open(db, migrate=False)
    settings = Settings(db_url=db, artifacts_dir=artifacts)
    return store, make_context(settings, store)


@cli_errors
def erase(
    user: Annotated[str, typer.Argument(help="The platform's (raw) user ID to erase.")],
    db: _DB,
    artifacts: Annotated[
        Path,
        typer.Option("--artifacts", help="The artifacts directory the server uses."),
    ] = Path("./serendip-data/artifacts"),
    refit: Annotated[
        bool,
        typer.Option(
            "--refit/--no-refit",
            help="Refit the active model version without the user, activate it and delete "
            "the artifacts of every version trained with them (default).",
        ),
    ] = True,
) -> None:
    """Erase USER from the store (events, follows, unfollows, exposures, consent, profile;
    authored items re-attributed to a tombstone), record the erasure as a keyed hash, then
    refit the active model without them and purge the artifacts that hold them."""
    from serendip.errors import SerendipError
    from serendip.service.privacy import ErasureRefit, erase_user, purge_artifacts
    from serendip.service.runtime import ModelRuntime

    store, ctx = _open(db, artifacts)
    try:
        receipt = erase_user(ctx, None, user, refit=False)
        stored = ctx.pseudonyms.user(user)
        summary = ", ".join(f"{v} {k}" for k, v in receipt.store.items() if v)
        tail = "model not refitted (--no-refit)"
        if refit:
            active = store.models.active()
            if active is None:
                n = purge_artifacts(ctx, [stored], keep=())
                tail = f"no active model version; {n} artifact entries purged"
            else:
                runtime = ModelRuntime(
                    store, precompute=False, build_in_background=False, freeze_gc=False
                )
                try:
                    runtime.load(Path(active.path), active.version)
                except SerendipError as exc:
                    raise SerendipError(
                        f"the user's data is erased, but the active version could not be "
                        f"loaded to refit it: {exc}"
                    ) from None
                job = ErasureRefit(ctx, runtime, threading.Lock())
                version = job.refit_once([stored])
                seconds = job.done[-1][1] if job.done else 0.0
                tail = (
                    f"active model refitted without them as {version} ({seconds:.1f} s), "
                    f"{job.purged} artifact entries holding them purged"
                )
    finally:
        store.close()
    typer.echo(f"erased '{user}' ({summary or 'nothing stored'}); {tail}")


def _switch(value: OnOff | None) -> bool | None:
    return None if value is None else value == "on"


@cli_errors
def consent(
    user: Annotated[str, typer.Argument(help="The platform's (raw) user ID.")],
    db: _DB,
    personalization: Annotated[
        OnOff | None, typer.Option("--personalization", help="on | off")
    ] = None,
    activity_for_others: Annotated[
        OnOff | None,
        typer.Option("--activity-for-others", help="on | off: may their activity shape others'."),
    ] = None,
    private: Annotated[
        OnOff | None, typer.Option("--private", help="on | off: never named in explanations.")
    ] = None,
    artifacts: Annotated[
        Path, typer.Option("--artifacts", help="The artifacts directory (erasure key).")
    ] = Path("./serendip-data/artifacts"),
) -> None:
    """Show or set USER's consent switches (a running server applies them on its next start;
    use its API to apply them at once)."""
    from serendip.errors import DataError
    from serendip.store import UserIn

    store, ctx = _open(db, artifacts)
    try:
        stored = ctx.pseudonyms.user(user)
        changing = (personalization, activity_for_others, private) != (None, None, None)
        if changing and ctx.erased([stored]):
            raise DataError(f"'{user}' was erased; their consent is not recorded again")
        c = (
            store.consents.update(
                stored,
                personalization=_switch(personalization),
                activity_for_others=_switch(activity_for_others),
            )
            if changing
            else store.consents.get(stored)
        )
        profile = store.users.get(stored)
        if private is not None:
            store.users.upsert(
                [
                    UserIn(
                        stored,
                        tuple(profile.interests) if profile else (),
                        private == "on",
                        profile.created_at if profile else None,
                    )
                ]
            )
            profile = store.users.get(stored)
    finally:
        store.close()
    is_private = bool(profile.private) if profile is not None else False

    def word(flag: bool) -> str:
        return "on" if flag else "off"

    typer.echo(
        f"'{user}': personalization {word(c.personalization)}, activity for others "
        f"{word(c.activity_for_others)}, private {word(is_private)}"
    )


@cli_errors
def purge(
    db: _DB,
    older_than_days: Annotated[
        float,
        typer.Option("--older-than-days", help="Delete events and exposures older than this."),
    ],
) -> None:
    """Delete events and exposures older than N days (run it daily from cron, or set
    SERENDIP_RETENTION_DAYS for the server to do it)."""
    from serendip.privacy.retention import purge as run_purge
    from serendip.store import Store

    store = Store.open(db, migrate=False)
    try:
        result = run_purge(store, older_than_days)
    finally:
        store.close()
    typer.echo(
        f"purged {result.events:,} events and {result.exposures:,} exposures older than "
        f"{older_than_days:g} days"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("erase")(erase)
    app.command("consent")(consent)
    app.command("purge")(purge)
