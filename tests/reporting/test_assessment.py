"""The privacy impact assessment: inventory from the live schema, settings as they are, and
only mitigations whose code and test exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from serendip.reporting import assessment as pia
from serendip.reporting.assessment import (
    MITIGATIONS,
    Mitigation,
    build_assessment,
    check_mitigation,
    repository_root,
    resolve_code,
    write_assessment,
)
from serendip.service.settings import ApiKey, Settings
from serendip.store import Store
from serendip.store.engine import make_engine


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    Store.open(url).close()  # the migrated schema, empty
    return url


def test_inventory_follows_the_live_schema(store_url: str) -> None:
    before = build_assessment(store_url, Settings(db_url=store_url))
    names = {t.name for t in before.tables}
    assert {"events", "users", "follows", "exposures", "consents", "erasures"} <= names
    events = next(t for t in before.tables if t.name == "events")
    assert events.personal and events.identifying == ("user_id",) and events.rows == 0
    follows = next(t for t in before.tables if t.name == "follows")
    assert set(follows.identifying) == {"follower", "followee"}
    assert not next(t for t in before.tables if t.name == "experiments").personal

    engine = make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE push_tokens (user_ref TEXT, device_id TEXT, note TEXT)"))
        conn.execute(text("INSERT INTO push_tokens VALUES ('u1', 'd1', 'x')"))
    engine.dispose()
    after = build_assessment(store_url, Settings(db_url=store_url))
    added = next(t for t in after.tables if t.name == "push_tokens")
    assert not added.classified and added.rows == 1
    cols = {c.name: c for c in added.columns}
    assert cols["user_ref"].identifies and cols["device_id"].personal
    assert cols["note"].category == "unclassified" and not cols["note"].personal
    assert any("push_tokens" in n for n in after.notes)
    md = pia.render_markdown(after)
    assert "`push_tokens` (unclassified)" in md and "`user_ref`" in md


def test_a_mitigation_is_listed_only_when_its_code_and_test_exist(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = MITIGATIONS[0]
    proven = next(m for m in MITIGATIONS if m.id == "M3")  # the DP counts: code and test here
    fake_code = Mitigation(
        "MX1",
        "a protection nobody wrote",
        ("R2",),
        "serendip.privacy.dp.no_such_thing",
        proven.test,
    )
    fake_test = Mitigation(
        "MX2",
        "a protection nobody tested",
        ("R2",),
        proven.code,
        "tests/privacy/test_dp.py::test_nope",
    )
    monkeypatch.setattr(pia, "MITIGATIONS", (proven, fake_code, fake_test))
    a = build_assessment(store_url, Settings(db_url=store_url))
    assert [c.mitigation.id for c in a.mitigations] == ["M3"]
    missing = {c.mitigation.id: c.problems for c in a.missing}
    assert missing == {
        "MX1": ("code serendip.privacy.dp.no_such_thing not found",),
        "MX2": ("test tests/privacy/test_dp.py::test_nope not found",),
    }
    md = pia.render_markdown(a)
    section5 = md.split("## 5.")[1].split("## 6.")[0]
    assert "M3" in section5 and "MX1" not in section5 and "MX2" not in section5
    assert "a protection nobody wrote" in md.split("## 6.")[1]
    assert real.id not in {c.mitigation.id for c in a.mitigations}


def test_the_shipped_registry_points_at_real_code_and_tests() -> None:
    """Every listed protection of this checkout resolves; the DP and audit ones always do."""
    root = repository_root()
    checks = {m.id: check_mitigation(m, root) for m in MITIGATIONS}
    for mid in ("M3", "M4", "M5", "M18"):
        assert checks[mid].listed, checks[mid].problems
    assert resolve_code("serendip.store.facade.Store.export_user") is not None
    assert resolve_code("serendip.nope.thing") is None


def test_settings_are_reported_without_secrets(store_url: str) -> None:
    settings = Settings(
        db_url=store_url,
        api_keys=[
            ApiKey(name="ops", key=SecretStr("very-secret-key"), scopes=frozenset({"admin"}))
        ],
        pseudonym_secret=SecretStr("hmac-secret"),
        retention_days=90,
        log_exposures=False,
    )
    a = build_assessment(store_url, settings)
    values = {s.name: s.value for s in a.settings}
    assert values["pseudonymization"] == "on" and values["retention_days"] == "90"
    assert values["log_exposures"] == "off" and values["api_keys"] == "ops (admin)"
    out = json.dumps(a.to_dict()) + pia.render_markdown(a) + pia.render_html(a)
    assert "very-secret-key" not in out and "hmac-secret" not in out


def test_switch_dependent_mitigations_say_their_state(store_url: str) -> None:
    a = build_assessment(store_url, Settings(db_url=store_url))
    status = {c.mitigation.id: c.status for c in a.mitigations + a.missing}
    assert status["M17"].startswith("on")  # exposure logging is on by default
    assert status["M13"] == ""  # always on


def test_documents_are_written(store_url: str, tmp_path: Path) -> None:
    a = build_assessment(store_url, Settings(db_url=store_url), now=0.0)
    md, html, js = write_assessment(a, tmp_path / "pia")
    text_md = md.read_text()
    for section in ("Data inventory", "Settings", "Purposes", "Risks", "Mitigations in place"):
        assert section in text_md
    assert "1970-01-01 00:00 UTC" in text_md
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<table>" in page
    data = json.loads(js.read_text())
    assert {t["name"] for t in data["tables"]} >= {"events", "users"}
    assert set(data["risk_coverage"]) == {r.id for r in pia.RISKS}
