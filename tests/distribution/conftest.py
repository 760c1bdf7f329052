"""Fixtures for the distribution tests: a real nginx on loopback (plain, HTTPS with a test CA, WebDAV).

nginx comes from Debian's packages (tests/run.sh installs nginx-light). Without it these tests skip
with the reason, unless BO_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import shutil

import pytest

from nginx_harness import Nginx, start_nginx
from services import require_service


@pytest.fixture(scope="session")
def nginx_server(tmp_path_factory):
    started = start_nginx(tmp_path_factory.mktemp("nginx"))
    require_service(isinstance(started, Nginx), str(started))
    yield started
    started.stop()


@pytest.fixture
def nginx(nginx_server: Nginx) -> Nginx:
    """The session's nginx with an empty published folder for this test."""
    for entry in nginx_server.www.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (nginx_server.www / "receipts").mkdir()
    return nginx_server
