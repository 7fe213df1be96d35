from pathlib import Path

import pytest

from serendip.errors import SerendipError
from serendip.service.process import ServeProcess, free_port


def test_free_port_is_a_usable_port() -> None:
    assert 1024 <= free_port() <= 65535


def test_a_server_that_exits_at_start_is_an_error_with_its_log(tmp_path: Path) -> None:
    server = ServeProcess("mysql://nowhere/db", tmp_path, {"SERENDIP_BOOTSTRAP": "false"})
    try:
        with pytest.raises(SerendipError, match="exited"):
            server.wait("/healthz", 60)
    finally:
        server.stop()
    assert server.log_path.is_file()
