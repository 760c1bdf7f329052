"""Fixtures for the exporter tests: a private exporter home per test, the demo hospital, services.

Helpers shared with the tests live in exporter_support.py (a unique module name: test folders here are
not packages). Services (PostgreSQL, MariaDB, an sshd the tests start) are used for real on loopback;
when one is missing the test is skipped with the reason, unless BO_REQUIRE_SERVICES=1, where it fails.
"""

from __future__ import annotations


import pytest

from exporter.home import ExporterHome
from exporter_support import Cli, Exporter, demo_sources_toml, enrol, start_sshd
from services import require_service


@pytest.fixture(scope="session")
def require():
    """The skip-unless-BO_REQUIRE_SERVICES rule as a fixture: ``require(available, reason)``."""
    return require_service


@pytest.fixture
def home(tmp_path, monkeypatch) -> ExporterHome:
    root = tmp_path / "exporter-home"
    monkeypatch.setenv("BACKUP_OPERATOR_EXPORT_HOME", str(root))
    monkeypatch.delenv("BACKUP_OPERATOR_EXPORT_PASSPHRASE", raising=False)
    return ExporterHome(root)


@pytest.fixture
def cli(capsys) -> Cli:
    return Cli(capsys)


@pytest.fixture
def demo_exporter(home, cli, tmp_path) -> Exporter:
    """An initialised exporter reading the demo hospital, with one folder desktop enrolled."""
    code, out, err = cli("init")
    assert code == 0, err
    home.config.write_text("[publish]\nretries = 0\n\n" + demo_sources_toml(), encoding="utf-8")
    setup = Exporter(home)
    enrol(cli, setup, "desk-a", tmp_path / "inbox-a")
    return setup


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on a loopback port for the whole session (key auth, checked host key)."""
    server, proc = start_sshd(tmp_path_factory.mktemp("sshd"))
    require_service(server is not None, str(proc))
    yield server
    proc.terminate()
    proc.wait(timeout=30)
    if proc.stderr:
        proc.stderr.close()
