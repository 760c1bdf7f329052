"""Shift times without an offset are never guessed (issue 11, problem 3), on real MariaDB and PostgreSQL.

A rota system that keeps local DATETIME values in America/Chicago used to be read as UTC when
``naive_times`` was left out: 07:00 CST became 07:00Z, a six-hour on-call error with every check passing.
Now the export is refused with one sentence naming the option and the schedule's zone, and
``naive_times = "local"`` reads them as Chicago wall time, across the DST change.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from backup_operator.core.model import open_database

from exporter.state import State

from site_database import MARIADB_URL, PG_URL, reachable, utc_now


@pytest.fixture(params=["mariadb", "postgresql"])
def local_rota(request, require):
    """A site schema whose on-call table holds local wall times (no offset) in America/Chicago."""
    url = MARIADB_URL if request.param == "mariadb" else PG_URL
    ok, why = reachable(url)
    require(ok, f"{request.param}: {why}")
    engine = create_engine(url, poolclass=NullPool)
    p = f"bo{secrets.token_hex(4)}"
    stamp = "DATETIME" if request.param == "mariadb" else "TIMESTAMP WITHOUT TIME ZONE"
    # Day shifts 07:00-19:00 and nights 19:00-07:00, Chicago wall time, from yesterday for ten days.
    today = utc_now().astimezone().date()
    rows = []
    for n in range(-1, 10):
        day = datetime.combine(today + timedelta(days=n), datetime.min.time())
        rows.append(("p-1", day + timedelta(hours=7), day + timedelta(hours=19)))
        rows.append(("p-2", day + timedelta(hours=19), day + timedelta(hours=31)))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {p}_staff (id VARCHAR(20), name VARCHAR(100))"))
        conn.execute(text(f"CREATE TABLE {p}_oncall (who VARCHAR(20), starts {stamp}, ends {stamp})"))
        conn.execute(text(f"INSERT INTO {p}_staff VALUES ('p-1', 'Ada Lovelace'), ('p-2', 'Grace Hopper')"))
        conn.execute(text(f"INSERT INTO {p}_oncall VALUES (:w, :s, :e)"),
                     [{"w": w, "s": s, "e": e} for w, s, e in rows])
    yield url, p, request.param
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {p}_staff"))
        conn.execute(text(f"DROP TABLE {p}_oncall"))
    engine.dispose()


def _source(url: str, p: str, naive: str | None) -> str:
    return "\n".join([
        "[[sources]]", 'type = "sql"', 'name = "rota system"', f'url = "{url}"',
        *([f'naive_times = "{naive}"'] if naive else []),
        "[sources.queries]",
        f'listings = "SELECT id, \'person\' AS kind, name AS display_name FROM {p}_staff"',
        "schedules = \"SELECT 'oc-icu' AS id, 'ICU on call' AS name, 'America/Chicago' AS timezone\"",
        f'shifts = "SELECT \'oc-icu\' AS schedule_id, who AS listing_id, starts AS start_utc, ends AS end_utc '
        f'FROM {p}_oncall"', ""])


def test_local_datetimes_without_naive_times_are_refused_naming_the_option_and_zone(local_rota, demo_exporter,
                                                                                   cli):
    url, p, backend = local_rota
    demo_exporter.home.config.write_text("[publish]\nretries = 0\n" + _source(url, p, None), encoding="utf-8")
    for command in ("check", "run"):
        code, out, err = cli(command)
        assert code == 51, (command, err)
        assert "'rota system' gives shift times without a UTC offset" in err
        assert 'naive_times = "local"' in err and "America/Chicago" in err and 'naive_times = "utc"' in err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert demo_exporter.snapshots("desk-a") == []
    assert State(demo_exporter.home.state).last_version() == 0


def test_naive_times_local_reads_chicago_wall_time(local_rota, demo_exporter, cli):
    url, p, backend = local_rota
    demo_exporter.home.config.write_text("[publish]\nretries = 0\n" + _source(url, p, "local"), encoding="utf-8")
    code, out, err = cli("run")
    assert code == 0, err
    conn = open_database(demo_exporter.open_newest("desk-a"))
    starts = [row[0] for row in conn.execute("SELECT start_utc FROM oncall_shifts WHERE listing_id = 'p-1'")]
    assert starts
    # 07:00 in Chicago is 13:00Z in winter (CST) and 12:00Z in summer (CDT); never 07:00Z.
    from zoneinfo import ZoneInfo

    for start in starts:
        local = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(ZoneInfo("America/Chicago"))
        assert (local.hour, local.minute) == (7, 0), start
        assert start[11:13] in ("12", "13")
