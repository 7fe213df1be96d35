"""The privacy impact assessment, generated from what runs: `build_assessment`, `write_assessment`.

Nothing in it is typed by hand at report time:

- **Data inventory**: the live schema, read by SQLAlchemy inspection of the store's database
  (every table and column, row counts), each column classified by `TABLES` (what it holds,
  whether it is personal data, whether it identifies a user); a table or column the
  classification does not know is listed anyway, classified by its name where it can be
  ("user_id", "follower", "email" ...) and flagged for review;
- **Settings**: pseudonymization, retention, exposure logging, API keys (names and scopes,
  never the secrets), the bind address, the training window, the database URL without its
  password;
- **Purposes** and **risks**: `PURPOSES`, `RISKS`;
- **Mitigations** (`MITIGATIONS`): each names the code that enforces it (a dotted path the
  generator imports) and the test that proves it (`tests/<file>.py::<test name>`, which the
  generator finds in the test tree). Only mitigations whose code and test both exist are
  listed; the others are reported as missing, with what is absent, so the document never
  claims a protection the code does not have.

Written as Markdown (`privacy-impact-assessment.md`), HTML (`.html`, jinja2) and JSON (for
the decision report).

>>> assessment = build_assessment("sqlite:///serendip-data/serendip.db", Settings())  # doctest: +SKIP
>>> write_assessment(assessment, Path("out"))  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, func, inspect, select
from sqlalchemy.engine import make_url

from serendip.errors import ConfigError
from serendip.service.settings import Settings
from serendip.store.engine import make_engine

__all__ = [
    "MITIGATIONS",
    "PURPOSES",
    "RISKS",
    "TABLES",
    "Assessment",
    "ColumnEntry",
    "Mitigation",
    "MitigationCheck",
    "Purpose",
    "Risk",
    "SettingEntry",
    "TableEntry",
    "build_assessment",
    "check_mitigation",
    "read_inventory",
    "render_html",
    "render_markdown",
    "resolve_code",
    "settings_inventory",
    "test_exists",
    "write_assessment",
]


# --------------------------------------------------------------------------- the catalogue
@dataclass(frozen=True, slots=True)
class ColumnClass:
    """What one column holds: a category (identifier, behaviour, profile, social, content,
    consent, pseudonym, operational), whether it is personal data, whether it identifies a user."""

    category: str
    personal: bool = False
    identifies: bool = False
    note: str = ""


_ID = ColumnClass(
    "identifier", personal=True, identifies=True, note="a user's ID (or its pseudonym)"
)
_OP = ColumnClass("operational")


@dataclass(frozen=True, slots=True)
class TableClass:
    purpose: str
    columns: Mapping[str, ColumnClass]


#: The known tables of the store (`serendip.store.schema`) and what each column holds.
TABLES: dict[str, TableClass] = {
    "events": TableClass(
        "interactions: what each user viewed, clicked, liked, shared, rated, and when",
        {
            "id": _OP,
            "event_id": _OP,
            "user_id": _ID,
            "item_id": ColumnClass("behaviour", personal=True, note="what the user engaged with"),
            "event": ColumnClass("behaviour", personal=True),
            "timestamp": ColumnClass("behaviour", personal=True, note="when (activity pattern)"),
            "value": ColumnClass("behaviour", personal=True),
            "received_at": _OP,
        },
    ),
    "items": TableClass(
        "the catalog: posts and their authors",
        {
            "item_id": _OP,
            "title": ColumnClass("content", personal=True, note="user-generated text"),
            "text": ColumnClass("content", personal=True, note="user-generated text"),
            "tags": ColumnClass("content"),
            "category": ColumnClass("content"),
            "author": ColumnClass("identifier", personal=True, identifies=True, note="author's ID"),
            "created_at": ColumnClass("content"),
            "updated_at": _OP,
            "deleted_at": _OP,
        },
    ),
    "users": TableClass(
        "user profiles",
        {
            "user_id": _ID,
            "interests": ColumnClass("profile", personal=True, note="declared interests"),
            "private": ColumnClass("consent", personal=True, note="activity never named to others"),
            "created_at": ColumnClass("profile", personal=True),
            "updated_at": _OP,
        },
    ),
    "follows": TableClass(
        "the social graph: who follows whom",
        {
            "follower": _ID,
            "followee": _ID,
            "created_at": ColumnClass("social", personal=True),
        },
    ),
    "unfollows": TableClass(
        "removed follow edges (replayed after a restart)",
        {"id": _OP, "follower": _ID, "followee": _ID, "at": ColumnClass("social", personal=True)},
    ),
    "exposures": TableClass(
        "served recommendation lists: who was shown what (A/B analysis, monitors)",
        {
            "id": _OP,
            "request_id": _OP,
            "user_id": _ID,
            "surface": _OP,
            "items": ColumnClass("behaviour", personal=True, note="what the user was shown"),
            "model_version": _OP,
            "experiment": _OP,
            "variant": ColumnClass("behaviour", personal=True, note="experiment assignment"),
            "teams": _OP,
            "at": ColumnClass("behaviour", personal=True),
        },
    ),
    "experiments": TableClass(
        "A/B and interleaving experiments (definitions, no user data)",
        {
            "experiment_id": _OP,
            "kind": _OP,
            "spec": _OP,
            "status": _OP,
            "created_at": _OP,
            "started_at": _OP,
            "stopped_at": _OP,
        },
    ),
    "consents": TableClass(
        "each user's consent switches",
        {
            "user_id": _ID,
            "personalization": ColumnClass("consent", personal=True),
            "activity_for_others": ColumnClass("consent", personal=True),
            "updated_at": ColumnClass("consent", personal=True),
        },
    ),
    "erasures": TableClass(
        "erasure log: keyed hashes of erased users, so later imports and fits exclude them",
        {
            "id": _OP,
            "subject": ColumnClass(
                "pseudonym",
                personal=True,
                note="keyed hash of the erased ID; re-identifiable only with the installation key",
            ),
            "receipt": ColumnClass("operational", note="counts of what was removed"),
            "at": _OP,
        },
    ),
    "model_versions": TableClass(
        "fitted model versions and their lineage (artifacts hold user factors and histories)",
        {
            "id": _OP,
            "version": _OP,
            "name": _OP,
            "path": ColumnClass(
                "operational", note="artifact directory: fitted models hold per-user state"
            ),
            "metrics": _OP,
            "created_at": _OP,
            "status": _OP,
            "active": _OP,
            "error": _OP,
            "lineage": _OP,
        },
    ),
    "model_activations": TableClass(
        "activation log of model versions",
        {"id": _OP, "version": _OP, "action": _OP, "at": _OP},
    ),
    "alembic_version": TableClass("schema version (migrations)", {"version_num": _OP}),
}

#: Column names that identify a user in a table the catalogue does not know.
_IDENTIFYING = re.compile(
    r"(user|follower|followee|author|subject|member|owner|account|customer|pseudonym|raw_id)"
)
#: Column names that hold personal (contact or device) data in an unknown table.
_PERSONAL = re.compile(r"(email|phone|name|address|ip|device|birth|gender|age|location|lat|lon)")


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    data: str
    basis: str


#: Why the data is processed.
PURPOSES: tuple[Purpose, ...] = (
    Purpose(
        "Personalised recommendations",
        "events, follows, profiles (interests), item catalog",
        "the service the user signed up for; switchable per user (consent: personalization)",
    ),
    Purpose(
        "Discovery beyond the user's network",
        "aggregate signals: popularity, trending, co-occurrence of items",
        "aggregates across users; a user may withhold their activity (activity_for_others)",
    ),
    Purpose(
        "Explanations of recommendations",
        "the user's own history, followees' public activity",
        "transparency; private activity is never named",
    ),
    Purpose(
        "Evaluation and experiments",
        "exposures (what was shown), experiment assignment, later events",
        "improving the service; exposure logging can be switched off",
    ),
    Purpose(
        "Model training and retraining",
        "events within the training window; erased users excluded",
        "the service; bounded by the training window and retention",
    ),
    Purpose(
        "Accountability for erasure",
        "keyed hashes of erased users",
        "legal obligation to honour erasure, also at the next import and fit",
    ),
)


@dataclass(frozen=True, slots=True)
class Risk:
    id: str
    title: str
    description: str


RISKS: tuple[Risk, ...] = (
    Risk(
        "R1",
        "Re-identification from stored IDs",
        "The platform's raw user IDs in the store, artifacts and logs link behaviour to a person.",
    ),
    Risk(
        "R2",
        "Inference from aggregate signals",
        "Popularity, trending and co-occurrence counts shown to others reveal whether one user "
        "interacted with an item (membership inference).",
    ),
    Risk(
        "R3",
        "Private activity revealed by explanations",
        "'People you follow liked this' names a user whose activity is private.",
    ),
    Risk(
        "R4",
        "Erasure not honoured everywhere",
        "A deleted user survives in a fitted model, a precomputed list, live state or the "
        "next import.",
    ),
    Risk(
        "R5",
        "Data kept longer than needed",
        "Old events accumulate without a purpose.",
    ),
    Risk(
        "R6",
        "Unauthorised access",
        "An API without keys, or a key with too wide a scope, exposes users' data.",
    ),
    Risk(
        "R7",
        "Processing against the user's choice",
        "Personalisation or use of a user's activity for others although they opted out.",
    ),
    Risk(
        "R8",
        "Unfair or narrowing exposure",
        "Popularity bias, neglect of light users, new authors and out-of-network content (the "
        "filter bubble).",
    ),
    Risk(
        "R9",
        "Data subject access not possible",
        "A user cannot learn what is held about them.",
    ),
)


@dataclass(frozen=True, slots=True)
class Mitigation:
    """One protection: the risks it addresses, the code that enforces it (dotted path:
    "package.module.function" or "package.module.Class.method") and the test that proves it
    ("tests/path/test_x.py::test_name" or "...::TestClass::test_name"). `setting`: optional
    check of the settings, returning a sentence when the protection depends on a switch
    (e.g. "off: SERENDIP_PSEUDONYM_SECRET is not set")."""

    id: str
    title: str
    risks: tuple[str, ...]
    code: str
    test: str
    setting: Callable[[Settings], str] | None = None


def _pseudonyms(s: Settings) -> str:
    return "on" if s.pseudonym_secret is not None else "off: SERENDIP_PSEUDONYM_SECRET is not set"


def _retention(s: Settings) -> str:
    if s.retention_days is None:
        return "off: SERENDIP_RETENTION_DAYS is not set (events are kept)"
    return f"on: events older than {s.retention_days:g} days are purged"


def _keys(s: Settings) -> str:
    if s.api_keys:
        return f"on: {len(s.api_keys)} key(s)"
    return "no keys: the server binds to localhost only"


#: Every protection the assessment knows of. The generator lists one only when its code and
#: its test exist (`check_mitigation`); helpers add theirs here as they land.
MITIGATIONS: tuple[Mitigation, ...] = (
    Mitigation(
        "M1",
        "Keyed pseudonyms of user IDs at ingestion (HMAC with a secret from settings)",
        ("R1",),
        "serendip.privacy.pseudonym.Pseudonymizer",
        "tests/privacy/test_pseudonym.py::test_pseudonyms_are_stable_keyed_and_prefixed",
        _pseudonyms,
    ),
    Mitigation(
        "M2",
        "Erasure log holds keyed hashes only, never the erased ID",
        ("R1", "R4"),
        "serendip.privacy.pseudonym.erasure_subject",
        "tests/privacy/test_pseudonym.py::test_erasure_subjects_differ_from_pseudonyms_and_name_nobody",
    ),
    Mitigation(
        "M2a",
        "Erased users stay out of later imports and training exports",
        ("R4",),
        "serendip.store.facade.Store.erased_among",
        "tests/service/test_erasure.py::test_erased_data_does_not_come_back",
    ),
    Mitigation(
        "M11b",
        "No model requires a demographic attribute (the user table holds none)",
        ("R7",),
        "serendip.store.schema.UserRow",
        "tests/privacy/test_retention.py::test_no_model_reads_a_demographic_attribute",
    ),
    Mitigation(
        "M2b",
        "Export and erasure by the platform's raw ID when IDs are pseudonymized",
        ("R1", "R4"),
        "serendip.privacy.pseudonym.Pseudonymizer.user",
        "tests/service/test_erasure.py::test_pseudonymized_erasure_takes_the_raw_id",
    ),
    Mitigation(
        "M3",
        "Differentially private aggregate counts (Laplace / analytic Gaussian, per-user bound)",
        ("R2",),
        "serendip.privacy.dp.private_counts",
        "tests/privacy/test_dp.py::test_removing_one_user_moves_the_counts_by_at_most_the_sensitivity",
    ),
    Mitigation(
        "M4",
        "Popularity and trending with the DP option (dp_epsilon); no exact fold-in of counts",
        ("R2",),
        "serendip.models.baselines.Popularity",
        "tests/models/test_dp_option.py::test_popularity_counts_are_released_with_laplace_noise",
    ),
    Mitigation(
        "M5",
        "Item-kNN similarities from DP co-occurrence counts (dp_epsilon)",
        ("R2",),
        "serendip.models.neighborhood.ItemKNN",
        "tests/models/test_dp_option.py::test_item_knn_similarities_come_from_noisy_cooccurrence",
    ),
    Mitigation(
        "M6",
        "Explanations never name a user whose activity is private (pipeline)",
        ("R3",),
        "serendip.pipeline.explain.Explainer",
        "tests/pipeline/test_explain.py::test_false_or_private_evidence_is_dropped",
    ),
    Mitigation(
        "M7",
        "A user who turns private disappears from every serving path at once",
        ("R3", "R7"),
        "serendip.service.routes.users.set_privacy",
        "tests/service/test_privacy.py::test_a_user_who_turns_private_disappears_from_every_path_at_once",
    ),
    Mitigation(
        "M8",
        "Neighbour models never name private neighbours",
        ("R3",),
        "serendip.models.neighborhood.neighbour_explanation",
        "tests/models/test_neighborhood.py::test_user_knn_explanation_names_neighbours_but_never_private_ones",
    ),
    Mitigation(
        "M9",
        "Erasure from store, models, precomputed lists and live state (DELETE /v1/users/{id})",
        ("R4",),
        "serendip.service.privacy.erase_user",
        "tests/service/test_erasure.py::test_erasure_through_the_api_leaves_no_trace_and_an_exact_model",
    ),
    Mitigation(
        "M9b",
        "Other users' explanations stop citing an erased user at once",
        ("R3", "R4"),
        "serendip.service.privacy.erase_user",
        "tests/service/test_erasure.py::test_other_users_explanations_stop_citing_an_erased_user_at_once",
    ),
    Mitigation(
        "M10",
        "Store deletes a user's profile, events and follows in one transaction",
        ("R4",),
        "serendip.store.facade.Store.erase_user",
        "tests/store/test_facade.py::test_export_and_erase_a_user",
    ),
    Mitigation(
        "M11",
        "Retention window: events older than N days purged on schedule",
        ("R5",),
        "serendip.privacy.retention.purge",
        "tests/privacy/test_retention.py::test_purge_deletes_only_what_is_older_than_the_window",
        _retention,
    ),
    Mitigation(
        "M12",
        "API keys with read / write / admin scopes, checked per route",
        ("R6",),
        "serendip.service.auth.require",
        "tests/service/test_auth.py::test_each_route_checks_its_scope",
        _keys,
    ),
    Mitigation(
        "M13",
        "Without API keys the server binds to localhost only",
        ("R6",),
        "serendip.service.settings.Settings.check_bind",
        "tests/service/test_settings.py::test_unauthenticated_server_binds_only_to_localhost",
    ),
    Mitigation(
        "M14",
        "Consent switches read from the store and applied to the served model",
        ("R7",),
        "serendip.store.privacy.ConsentRepository",
        "tests/service/test_runtime_variants.py::test_consents_are_read_from_the_store_at_load",
    ),
    Mitigation(
        "M15",
        "Data subject export of everything held (admin scope)",
        ("R9",),
        "serendip.store.facade.Store.export_user",
        "tests/service/test_export.py::test_export_has_everything_about_the_user",
    ),
    Mitigation(
        "M16",
        "An export never contains another user's data",
        ("R9", "R6"),
        "serendip.service.routes.users.export_user",
        "tests/service/test_export.py::test_export_never_shows_another_users_data",
    ),
    Mitigation(
        "M17",
        "Exposure logging can be switched off",
        ("R5",),
        "serendip.service.settings.Settings",
        "tests/service/test_experiments.py::test_exposures_are_written_at_shutdown_and_not_at_all_when_switched_off",
        lambda s: "on: served lists are logged" if s.log_exposures else "off",
    ),
    Mitigation(
        "M18",
        "Bias and discovery audit in every study (popularity lift, long tail, new authors, "
        "activity parity, out-of-network share)",
        ("R8",),
        "serendip.evaluation.audit.audit_recommendations",
        "tests/evaluation/test_audit.py::test_audit_matches_the_hand_computed_example",
    ),
)


# --------------------------------------------------------------------------- inventory
@dataclass(frozen=True, slots=True)
class ColumnEntry:
    name: str
    type: str
    nullable: bool
    category: str
    personal: bool
    identifies: bool
    note: str = ""
    classified: bool = True


@dataclass(frozen=True, slots=True)
class TableEntry:
    name: str
    purpose: str
    rows: int | None
    columns: tuple[ColumnEntry, ...]
    classified: bool = True

    @property
    def personal(self) -> bool:
        return any(c.personal for c in self.columns)

    @property
    def identifying(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.identifies)


def _classify_unknown(name: str) -> ColumnClass:
    low = name.lower()
    if _IDENTIFYING.search(low):
        return ColumnClass("identifier", personal=True, identifies=True, note="by its name")
    if _PERSONAL.search(low):
        return ColumnClass("personal", personal=True, note="by its name")
    return ColumnClass("unclassified", note="review")


def read_inventory(engine: Engine, *, count_rows: bool = True) -> tuple[TableEntry, ...]:
    """Every table and column of the live database behind `engine`, classified (see the
    module docstring); tables in name order. `count_rows`: also count each table's rows."""
    insp = inspect(engine)
    out = []
    for table in sorted(insp.get_table_names()):
        known = TABLES.get(table)
        columns = []
        for col in insp.get_columns(table):
            name = str(col["name"])
            cls = known.columns.get(name) if known is not None else None
            classified = cls is not None
            if cls is None:
                cls = _classify_unknown(name)
            columns.append(
                ColumnEntry(
                    name=name,
                    type=str(col["type"]),
                    nullable=bool(col.get("nullable", True)),
                    category=cls.category,
                    personal=cls.personal,
                    identifies=cls.identifies,
                    note=cls.note,
                    classified=classified,
                )
            )
        rows = _count(engine, table) if count_rows else None
        out.append(
            TableEntry(
                name=table,
                purpose=known.purpose if known is not None else "not in the catalogue: review",
                rows=rows,
                columns=tuple(columns),
                classified=known is not None,
            )
        )
    return tuple(out)


def _count(engine: Engine, table: str) -> int | None:
    try:
        t = Table(table, MetaData())
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t)).scalar_one())
    except Exception:  # a view or a table we may not read: the inventory still lists it
        return None


@dataclass(frozen=True, slots=True)
class SettingEntry:
    name: str
    value: str
    meaning: str


def settings_inventory(settings: Settings) -> tuple[SettingEntry, ...]:
    """The privacy-relevant settings, as they are (API key secrets never shown)."""
    keys = (
        "; ".join(f"{k.name} ({', '.join(sorted(k.scopes))})" for k in settings.api_keys)
        if settings.api_keys
        else "none"
    )
    try:
        db = make_url(settings.db_url).render_as_string(hide_password=True)
    except Exception:
        db = "(not a URL)"
    return (
        SettingEntry("db_url", db, "where the personal data is stored"),
        SettingEntry(
            "artifacts_dir", str(settings.artifacts_dir), "fitted models (per-user state)"
        ),
        SettingEntry(
            "pseudonymization",
            "on" if settings.pseudonym_secret is not None else "off",
            "raw user IDs replaced by keyed hashes at ingestion",
        ),
        SettingEntry(
            "retention_days",
            "keep all" if settings.retention_days is None else f"{settings.retention_days:g}",
            "events older than this are purged",
        ),
        SettingEntry(
            "log_exposures",
            "on" if settings.log_exposures else "off",
            "every served list stored with the user's ID",
        ),
        SettingEntry(
            "train_window_days",
            "all" if settings.train_window_days is None else f"{settings.train_window_days:g}",
            "how far back training reads events",
        ),
        SettingEntry("api_keys", keys, "who may call the API (names and scopes)"),
        SettingEntry(
            "host",
            settings.host,
            "bind address (without keys only a loopback address is allowed)",
        ),
    )


# --------------------------------------------------------------------------- mitigations
@dataclass(frozen=True, slots=True)
class MitigationCheck:
    mitigation: Mitigation
    code_ok: bool
    test_ok: bool
    problems: tuple[str, ...]
    status: str = ""

    @property
    def listed(self) -> bool:
        return self.code_ok and self.test_ok


def resolve_code(path: str) -> object | None:
    """The object a dotted path names ("pkg.module.Class.method"), importing the longest
    module prefix that imports; None when nothing by that name exists."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: object = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return None
            obj = getattr(obj, attr)
        return obj
    return None


def test_exists(ref: str, root: Path) -> bool:
    """Whether "tests/x/test_y.py::test_name" (or "...::TestClass::test_name") names a test
    function defined in that file under `root` (the repository root)."""
    file, _, rest = ref.partition("::")
    names = [n for n in rest.split("::") if n]
    path = root / file
    if not names or not path.is_file():
        return False
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return False
    body: Sequence[ast.stmt] = tree.body
    for i, name in enumerate(names):
        last = i == len(names) - 1
        kinds: tuple[type[ast.stmt], ...] = (
            (ast.FunctionDef, ast.AsyncFunctionDef) if last else (ast.ClassDef,)
        )
        found: ast.stmt | None = next(
            (n for n in body if isinstance(n, kinds) and getattr(n, "name", None) == name), None
        )
        if found is None:
            return False
        if isinstance(found, ast.ClassDef):
            body = found.body
    return True


# Keep pytest from collecting the checker itself when this module is imported by a test.
test_exists.__test__ = False  # type: ignore[attr-defined]


def check_mitigation(
    m: Mitigation, root: Path, settings: Settings | None = None
) -> MitigationCheck:
    """Whether `m`'s code imports and its test exists under `root`; what is missing."""
    problems = []
    code_ok = resolve_code(m.code) is not None
    if not code_ok:
        problems.append(f"code {m.code} not found")
    test_ok = test_exists(m.test, root)
    if not test_ok:
        problems.append(f"test {m.test} not found")
    status = m.setting(settings) if (m.setting is not None and settings is not None) else ""
    return MitigationCheck(m, code_ok, test_ok, tuple(problems), status)


# --------------------------------------------------------------------------- the document
@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything the documents show. `mitigations`: the listed ones (code and test exist);
    `missing`: the others with what is absent."""

    created: float
    database: str
    tables: tuple[TableEntry, ...]
    settings: tuple[SettingEntry, ...]
    purposes: tuple[Purpose, ...]
    risks: tuple[Risk, ...]
    mitigations: tuple[MitigationCheck, ...]
    missing: tuple[MitigationCheck, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def personal_tables(self) -> tuple[TableEntry, ...]:
        return tuple(t for t in self.tables if t.personal)

    def risk_coverage(self) -> dict[str, list[str]]:
        """Risk ID -> IDs of the listed mitigations that address it."""
        out: dict[str, list[str]] = {r.id: [] for r in self.risks}
        for c in self.mitigations:
            for r in c.mitigation.risks:
                out.setdefault(r, []).append(c.mitigation.id)
        return out

    def to_dict(self) -> dict[str, Any]:
        def check(c: MitigationCheck) -> dict[str, Any]:
            m = c.mitigation
            return {
                "id": m.id,
                "title": m.title,
                "risks": list(m.risks),
                "code": m.code,
                "test": m.test,
                "status": c.status,
                "problems": list(c.problems),
            }

        return {
            "created": self.created,
            "database": self.database,
            "tables": [
                {**asdict(t), "personal": t.personal, "identifying": list(t.identifying)}
                for t in self.tables
            ],
            "settings": [asdict(s) for s in self.settings],
            "purposes": [asdict(p) for p in self.purposes],
            "risks": [asdict(r) for r in self.risks],
            "risk_coverage": self.risk_coverage(),
            "mitigations": [check(c) for c in self.mitigations],
            "missing": [check(c) for c in self.missing],
            "notes": list(self.notes),
        }


def repository_root() -> Path:
    """The checkout this package runs from (src/serendip/reporting -> the repository)."""
    return Path(__file__).resolve().parents[3]


def build_assessment(
    db: str | Engine,
    settings: Settings,
    *,
    root: Path | None = None,
    mitigations: Sequence[Mitigation] | None = None,
    now: float | None = None,
) -> Assessment:
    """The assessment of the store at `db` (a URL or an engine) under `settings`.

    root: the repository whose tests/ prove the mitigations (default: the checkout this
    package runs from); mitigations: default `MITIGATIONS` (read at call time, so a test can
    patch the registry).
    """
    root = root or repository_root()
    notes = []
    if not (root / "tests").is_dir():
        notes.append(f"no tests/ under {root}: no mitigation can be proven, so none is listed")
    engine = make_engine(db) if isinstance(db, str) else db
    try:
        tables = read_inventory(engine)
        url = engine.url.render_as_string(hide_password=True)
    finally:
        if isinstance(db, str):
            engine.dispose()
    if not tables:
        notes.append("the database has no tables: is this the store (run `serendip serve` once)?")
    unknown = [t.name for t in tables if not t.classified]
    if unknown:
        notes.append(
            f"tables not in the catalogue, classified by column names: {', '.join(unknown)}"
        )
    checks = [check_mitigation(m, root, settings) for m in (mitigations or MITIGATIONS)]
    return Assessment(
        created=time.time() if now is None else now,
        database=url,
        tables=tables,
        settings=settings_inventory(settings),
        purposes=PURPOSES,
        risks=RISKS,
        mitigations=tuple(c for c in checks if c.listed),
        missing=tuple(c for c in checks if not c.listed),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- rendering
def _env(*, html: bool = False) -> Any:
    import jinja2

    env = jinja2.Environment(
        autoescape=html, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    env.filters["when"] = lambda t: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    return env


_MARKDOWN = """\
# Privacy impact assessment

Generated {{ a.created | when }} from the live schema of `{{ a.database }}` and the running
settings by `serendip assess`. Every mitigation listed names the code that enforces it and the
test that proves it; both were checked to exist when this document was generated.
{% for n in a.notes %}

> Note: {{ n }}
{% endfor %}

## 1. Data inventory

{{ a.personal_tables | length }} of {{ a.tables | length }} tables hold personal data.

| Table | Rows | Purpose | Personal data | Identifies a user |
|---|---:|---|---|---|
{% for t in a.tables %}
| `{{ t.name }}`{% if not t.classified %} (unclassified){% endif %} | {{ "?" if t.rows is none else t.rows }} | {{ t.purpose | cell }} | {{ "yes" if t.personal else "no" }} | {{ t.identifying | join(", ") or "-" }} |
{% endfor %}

### Columns

| Table | Column | Type | Category | Personal | Identifies | Note |
|---|---|---|---|---|---|---|
{% for t in a.tables %}
{% for c in t.columns %}
| `{{ t.name }}` | `{{ c.name }}` | {{ c.type | cell }} | {{ c.category }}{% if not c.classified %} (by name){% endif %} | {{ "yes" if c.personal else "no" }} | {{ "yes" if c.identifies else "no" }} | {{ c.note | cell }} |
{% endfor %}
{% endfor %}

## 2. Settings

| Setting | Value | Meaning |
|---|---|---|
{% for s in a.settings %}
| {{ s.name }} | {{ s.value | cell }} | {{ s.meaning | cell }} |
{% endfor %}

## 3. Purposes

| Purpose | Data | Basis |
|---|---|---|
{% for p in a.purposes %}
| {{ p.name }} | {{ p.data | cell }} | {{ p.basis | cell }} |
{% endfor %}

## 4. Risks

| Risk | Description | Mitigated by |
|---|---|---|
{% set cov = a.risk_coverage() %}
{% for r in a.risks %}
| {{ r.id }} {{ r.title }} | {{ r.description | cell }} | {{ cov[r.id] | join(", ") or "**none in place**" }} |
{% endfor %}

## 5. Mitigations in place

| ID | Mitigation | Risks | Enforced by | Proven by | Status |
|---|---|---|---|---|---|
{% for c in a.mitigations %}
| {{ c.mitigation.id }} | {{ c.mitigation.title | cell }} | {{ c.mitigation.risks | join(", ") }} | `{{ c.mitigation.code }}` | `{{ c.mitigation.test }}` | {{ c.status or "always on" }} |
{% endfor %}

## 6. Mitigations not in place

{% if a.missing %}
Known protections whose code or test does not exist in this installation; they are not
claimed above.

| ID | Mitigation | Risks | Missing |
|---|---|---|---|
{% for c in a.missing %}
| {{ c.mitigation.id }} | {{ c.mitigation.title | cell }} | {{ c.mitigation.risks | join(", ") }} | {{ c.problems | join("; ") | cell }} |
{% endfor %}
{% else %}
None: every known protection has its code and its test.
{% endif %}
"""

_HTML = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Privacy impact assessment</title>
<style>
body { font: 14px/1.5 -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #0f172a;
       max-width: 1200px; margin: 24px auto; padding: 0 24px; }
h1 { font-size: 24px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #e2e8f0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 13px; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f1f5f9; color: #475569; font-weight: 600; }
code { font-size: 12px; background: #f1f5f9; padding: 0 4px; border-radius: 3px; }
.no { color: #b91c1c; font-weight: 600; } .note { color: #b45309; } .muted { color: #64748b; }
</style></head><body>
<h1>Privacy impact assessment</h1>
<p class="muted">Generated {{ a.created | when }} from the live schema of <code>{{ a.database | e }}</code> and the
running settings by <code>serendip assess</code>. Every mitigation listed names the code that enforces it and the test
that proves it; both were checked to exist when this document was generated.</p>
{% for n in a.notes %}<p class="note">Note: {{ n | e }}</p>{% endfor %}
<h2>1. Data inventory</h2>
<p>{{ a.personal_tables | length }} of {{ a.tables | length }} tables hold personal data.</p>
<table><tr><th>Table</th><th>Rows</th><th>Purpose</th><th>Personal data</th><th>Identifies a user</th></tr>
{% for t in a.tables %}<tr><td><code>{{ t.name | e }}</code>{% if not t.classified %} <span class="note">(unclassified)</span>{% endif %}</td>
<td>{{ "?" if t.rows is none else t.rows }}</td><td>{{ t.purpose | e }}</td><td>{{ "yes" if t.personal else "no" }}</td>
<td>{{ t.identifying | join(", ") | e or "-" }}</td></tr>{% endfor %}
</table>
<details><summary>Columns</summary>
<table><tr><th>Table</th><th>Column</th><th>Type</th><th>Category</th><th>Personal</th><th>Identifies</th><th>Note</th></tr>
{% for t in a.tables %}{% for c in t.columns %}<tr><td><code>{{ t.name | e }}</code></td><td><code>{{ c.name | e }}</code></td>
<td>{{ c.type | e }}</td><td>{{ c.category }}{% if not c.classified %} (by name){% endif %}</td><td>{{ "yes" if c.personal else "no" }}</td>
<td>{{ "yes" if c.identifies else "no" }}</td><td>{{ c.note | e }}</td></tr>{% endfor %}{% endfor %}
</table></details>
<h2>2. Settings</h2>
<table><tr><th>Setting</th><th>Value</th><th>Meaning</th></tr>
{% for s in a.settings %}<tr><td>{{ s.name }}</td><td>{{ s.value | e }}</td><td>{{ s.meaning | e }}</td></tr>{% endfor %}
</table>
<h2>3. Purposes</h2>
<table><tr><th>Purpose</th><th>Data</th><th>Basis</th></tr>
{% for p in a.purposes %}<tr><td>{{ p.name | e }}</td><td>{{ p.data | e }}</td><td>{{ p.basis | e }}</td></tr>{% endfor %}
</table>
<h2>4. Risks</h2>
{% set cov = a.risk_coverage() %}
<table><tr><th>Risk</th><th>Description</th><th>Mitigated by</th></tr>
{% for r in a.risks %}<tr><td>{{ r.id }} {{ r.title | e }}</td><td>{{ r.description | e }}</td>
<td>{% if cov[r.id] %}{{ cov[r.id] | join(", ") }}{% else %}<span class="no">none in place</span>{% endif %}</td></tr>{% endfor %}
</table>
<h2>5. Mitigations in place</h2>
<table><tr><th>ID</th><th>Mitigation</th><th>Risks</th><th>Enforced by</th><th>Proven by</th><th>Status</th></tr>
{% for c in a.mitigations %}<tr><td>{{ c.mitigation.id }}</td><td>{{ c.mitigation.title | e }}</td><td>{{ c.mitigation.risks | join(", ") }}</td>
<td><code>{{ c.mitigation.code | e }}</code></td><td><code>{{ c.mitigation.test | e }}</code></td><td>{{ (c.status or "always on") | e }}</td></tr>{% endfor %}
</table>
<h2>6. Mitigations not in place</h2>
{% if a.missing %}<p>Known protections whose code or test does not exist in this installation; they are not claimed above.</p>
<table><tr><th>ID</th><th>Mitigation</th><th>Risks</th><th>Missing</th></tr>
{% for c in a.missing %}<tr><td>{{ c.mitigation.id }}</td><td>{{ c.mitigation.title | e }}</td><td>{{ c.mitigation.risks | join(", ") }}</td>
<td class="no">{{ c.problems | join("; ") | e }}</td></tr>{% endfor %}
</table>{% else %}<p>None: every known protection has its code and its test.</p>{% endif %}
</body></html>
"""


def render_markdown(assessment: Assessment) -> str:
    return str(_env().from_string(_MARKDOWN).render(a=assessment))


def render_html(assessment: Assessment) -> str:
    return str(_env(html=True).from_string(_HTML).render(a=assessment))


def write_assessment(assessment: Assessment, out_dir: Path) -> tuple[Path, Path, Path]:
    """Write privacy-impact-assessment.md, .html and .json into `out_dir` (created)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / "privacy-impact-assessment"
    md, html, js = stem.with_suffix(".md"), stem.with_suffix(".html"), stem.with_suffix(".json")
    md.write_text(render_markdown(assessment), encoding="utf-8")
    html.write_text(render_html(assessment), encoding="utf-8")
    js.write_text(json.dumps(assessment.to_dict(), indent=2) + "\n", encoding="utf-8")
    return md, html, js
