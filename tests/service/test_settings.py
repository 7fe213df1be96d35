"""Settings from the environment and the localhost-only rule without API keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serendip.errors import ConfigError
from serendip.service.settings import Settings, is_loopback


def test_defaults() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.db_url == "sqlite:///./serendip-data/serendip.db"
    assert str(s.artifacts_dir) == "serendip-data/artifacts"
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert (s.limits.max_k, s.limits.max_batch) == (200, 10_000)
    assert not s.authenticated


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERENDIP_PORT", "9001")
    monkeypatch.setenv("SERENDIP_DB_URL", "postgresql+psycopg://x@h/db")
    monkeypatch.setenv("SERENDIP_API_KEYS", '[{"name": "web", "key": "k1", "scopes": ["read"]}]')
    monkeypatch.setenv("SERENDIP_LIMITS__MAX_K", "50")
    s = Settings()
    assert s.port == 9001 and s.db_url.startswith("postgresql")
    assert s.api_keys[0].key.get_secret_value() == "k1" and s.api_keys[0].scopes == {"read"}
    assert s.limits.max_k == 50
    assert "k1" not in repr(s)
    monkeypatch.setenv("SERENDIP_FRESH_SLOTS", "0")
    assert Settings().fresh_slots == 0  # secrets stay out of logs


def test_bad_settings_fail_with_the_field() -> None:
    with pytest.raises(ValidationError, match="scopes"):
        Settings(api_keys=[{"key": "k", "scopes": ["root"]}])
    with pytest.raises(ValidationError, match="port"):
        Settings(port=70_000)
    with pytest.raises(ValidationError, match="fresh_slots"):
        Settings(fresh_slots=-1)


def test_unauthenticated_server_binds_only_to_localhost() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        Settings(host=host).check_bind()
    with pytest.raises(ConfigError, match=r"refusing to bind to 0\.0\.0\.0 without API keys"):
        Settings(host="0.0.0.0").check_bind()
    Settings(host="0.0.0.0", api_keys=[{"key": "k", "scopes": ["read"]}]).check_bind()
    assert not is_loopback("example.com") and not is_loopback("10.0.0.1")
