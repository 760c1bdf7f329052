"""SQL sources for real: SQLite, PostgreSQL and MariaDB on loopback, one consistent read, failures mid-read."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from backup_operator.errors import ConfigError

from exporter.config import parse_config
from backup_operator.errors import SourceError
from exporter.sources import read_sources, ReadWindow
from exporter.state import State

from site_database import MARIADB_URL, PG_URL, create_site_database, reachable, utc_now

BACKENDS = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(scope="module", params=BACKENDS)
def site(request, require, tmp_path_factory):
    """The demo hospital in a site-shaped database, once per backend for this module."""
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'directory.db'}"
    else:
        url = PG_URL if backend == "postgresql" else MARIADB_URL
        ok, why = reachable(url)
        require(ok, f"{backend}: {why}")
    database = create_site_database(url, utc_now())
    database.backend = backend
    yield database
    database.drop()


def window():
    return ReadWindow.around(utc_now(), 14, 60)


def read(site, **extra):
    config = parse_config({"sources": [site.source(**extra)]})
    return read_sources(config, window())


def test_site_queries_map_onto_the_model(site):
    data = read(site)
    assert data.counts["listings"] == site.count("people")
    assert data.counts["contact_methods"] == site.count("phones")
    assert data.counts["oncall_schedules"] == 51
    assert data.counts["oncall_shifts"] == site.count("oncall_assignments")
    first = next(r for r in data.listings if r["id"] == "p-00001")
    assert first["kind"] == "person" and first["family_name"] and first["display_name"]
    # Instants come back as UTC text whatever the column type (TIMESTAMPTZ or naive DATETIME in UTC).
    shift = data.shifts[0]
    assert shift["start_utc"].endswith("Z") and shift["start_utc"] < shift["end_utc"]


def test_same_instants_from_every_backend(site, tmp_path):
    # The SQLite copy of the same data is the reference: shifts must match exactly, instant for instant.
    reference = create_site_database(f"sqlite:///{tmp_path / 'ref.db'}", utc_now())
    try:
        mine = sorted((s["schedule_id"], s["tier"], s["start_utc"], s["end_utc"]) for s in read(site).shifts)
        theirs = sorted((s["schedule_id"], s["tier"], s["start_utc"], s["end_utc"]) for s in read(reference).shifts)
        assert mine[:50] == theirs[:50] and len(mine) == len(theirs)
    finally:
        reference.drop()


def test_a_query_returning_wrong_columns_is_named(site):
    source = site.source()
    source["queries"]["contact_methods"] = source["queries"]["contact_methods"].replace(
        "ph.number AS value", "ph.number AS phone_number")
    config = parse_config({"sources": [source]})
    with pytest.raises(SourceError) as err:
        read_sources(config, window())
    message = str(err.value)
    assert "query contact_methods" in message and "'phone_number'" in message


def test_a_failing_query_names_source_and_table(site):
    source = site.source()
    source["queries"]["shifts"] = source["queries"]["shifts"].replace("_oncall_assignments", "_no_such_table")
    with pytest.raises(SourceError, match="'directory database'.*the shifts query failed"):
        read_sources(parse_config({"sources": [source]}), window())


def test_a_mapping_renames_and_recodes(site):
    source = site.source()
    source["queries"]["listings"] = source["queries"]["listings"].replace("full_name AS display_name", "full_name")
    source["mapping"] = {"listings": {"columns": {"display_name": "full_name"},
                                      "values": {"kind": {"person": "person", "department": "department"}}}}
    data = read_sources(parse_config({"sources": [source]}), window())
    assert all(r["display_name"] for r in data.listings)


class Between:
    """Run ``action(conn)`` from another connection just before the export's ``table`` query."""

    def __init__(self, table_marker: str, action):
        self.marker = table_marker
        self.action = action
        self.fired = False

    def __enter__(self):
        event.listen(Engine, "before_cursor_execute", self.hook)
        return self

    def __exit__(self, *exc):
        event.remove(Engine, "before_cursor_execute", self.hook)

    def hook(self, conn, cursor, statement, parameters, context, executemany):
        if not self.fired and self.marker in statement and "AS schedule_id" in statement:
            self.fired = True
            self.action(conn)


def _other(site):
    return create_engine(site.url, poolclass=NullPool)


# SQLite is left out: a writer cannot commit while the export's read transaction holds the file.
@pytest.mark.parametrize("site", ["postgresql", "mariadb"], indirect=True)
def test_all_queries_read_one_consistent_state(site):
    """A person retired, with their shifts, between two queries of one export: that export is still whole."""
    with _other(site).connect() as probe:
        pid, = probe.execute(text(f"SELECT person_id FROM {site.prefix}_oncall_assignments "
                                  "ORDER BY id LIMIT 1")).one()
        theirs = probe.execute(text(f"SELECT id, group_code FROM {site.prefix}_oncall_assignments "
                                    "WHERE person_id = :p"), {"p": pid}).all()

    def retire_elsewhere(_conn):
        site.execute("UPDATE {p}_oncall_assignments SET group_code = 'retired' WHERE person_id = :p", {"p": pid})
        site.execute("UPDATE {p}_people SET active = 0 WHERE person_id = :p", {"p": pid})

    before = read(site)
    try:
        with Between("_oncall_assignments", retire_elsewhere) as between:
            during = read(site)
        assert between.fired
        # The export saw the state at its start: the person and their shifts, no dangling reference.
        assert during.counts == before.counts
        assert any(s["listing_id"] == pid for s in during.shifts)
        assert any(r["id"] == pid for r in during.listings)
        after = read(site)
        assert not any(r["id"] == pid for r in after.listings)
        assert not any(s["listing_id"] == pid for s in after.shifts if s["schedule_id"] != "retired")
        # The same race at READ COMMITTED does tear the read (so this test can fail): undo, race again.
        site.execute("UPDATE {p}_people SET active = 1 WHERE person_id = :p", {"p": pid})
        for row_id, group in theirs:
            site.execute("UPDATE {p}_oncall_assignments SET group_code = :g WHERE id = :i", {"g": group, "i": row_id})
        with Between("_oncall_assignments", retire_elsewhere):
            torn = read(site, isolation="READ COMMITTED")
        assert any(r["id"] == pid for r in torn.listings)
        assert not any(s["listing_id"] == pid for s in torn.shifts if s["schedule_id"] != "retired")
    finally:
        site.execute("UPDATE {p}_people SET active = 1 WHERE person_id = :p", {"p": pid})
        for row_id, group in theirs:
            site.execute("UPDATE {p}_oncall_assignments SET group_code = :g WHERE id = :i",
                         {"g": group, "i": row_id})


def _kill(site):
    def action(conn):
        dbapi = conn.connection.dbapi_connection
        other = _other(site)
        with other.connect() as killer:
            if site.backend == "postgresql":
                killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dbapi.get_backend_pid()})
            else:
                killer.execute(text(f"KILL {int(dbapi.thread_id())}"))
            killer.commit()
        other.dispose()
    return action


@pytest.mark.parametrize("site", ["postgresql", "mariadb"], indirect=True)  # SQLite has no connection to kill
def test_a_connection_killed_mid_export_publishes_nothing_and_the_next_run_succeeds(site, demo_exporter, cli):
    home = demo_exporter.home
    home.config.write_text("[publish]\nretries = 0\n[checks]\nmax_drop_percent = 100\n\n" + site.source_toml(),
                           encoding="utf-8")
    with Between("_oncall_assignments", _kill(site)) as between:
        code, out, err = cli("run")
    assert between.fired
    assert code == 51, err
    assert "the connection was lost during the shifts query" in err and "nothing was published" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert demo_exporter.snapshots("desk-a") == []
    [failed] = State(home.state).runs()
    assert failed.result == "failed" and "connection was lost" in failed.message

    code, out, err = cli("run")
    assert code == 0, err
    assert [p.name for p in demo_exporter.snapshots("desk-a")] == ["snapshot-000000000001.bosnap"]


def test_an_unreachable_database_is_one_sentence_without_the_password(tmp_path):
    source = {"type": "sql", "name": "hr", "url": "postgresql+psycopg2://reader:hunter2@127.0.0.1:1/hr",
              "queries": {"listings": "SELECT 1"}, "connect_timeout_s": 3}
    with pytest.raises(SourceError) as err:
        read_sources(parse_config({"sources": [source]}), window())
    message = str(err.value)
    assert "could not connect" in message and "hunter2" not in message and "127.0.0.1:1" in message


def test_password_and_url_from_the_environment(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ConfigError, match="BO_DIR_URL"):
        read_sources(parse_config({"sources": [{"type": "sql", "url_env": "BO_DIR_URL",
                                                "queries": {"listings": "SELECT 1"}}]}), window())
    monkeypatch.setenv("BO_DIR_URL", url)
    source = {"type": "sql", "url_env": "BO_DIR_URL",
              "queries": {"listings": "SELECT 'x' AS id, 'person' AS kind, 'X Y' AS display_name"}}
    data = read_sources(parse_config({"sources": [source]}), window())
    assert data.listings[0]["id"] == "x"


def test_a_missing_driver_is_a_config_error():
    source = {"type": "sql", "url": "nosuchdb+nodriver://x/y", "queries": {"listings": "SELECT 1"}}
    with pytest.raises(ConfigError, match="nosuchdb"):
        read_sources(parse_config({"sources": [source]}), window())
