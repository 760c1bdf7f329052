"""``check`` is ``run`` minus publishing, on real PostgreSQL and MariaDB (issue 11, problems 1 and 2).

A site's directory database with NULL pager columns used to pass ``check`` ("All checks passed") and then
fail ``run`` with exit 3; after a purge of 40% of the staff, ``run --force`` still exited 3 because shifts
named the removed people. Here both go through the real site database and the real command line.
"""

from __future__ import annotations

import pytest

from backup_operator.core.model import open_database

from exporter.state import State

from site_database import MARIADB_URL, PG_URL, create_site_database, reachable, utc_now


@pytest.fixture(params=["postgresql", "mariadb"])
def site(request, require):
    url = PG_URL if request.param == "postgresql" else MARIADB_URL
    ok, why = reachable(url)
    require(ok, f"{request.param}: {why}")
    database = create_site_database(url, utc_now())
    yield database
    database.drop()


def _configure(home, site, extra: str = "") -> None:
    home.config.write_text("[publish]\nretries = 0\n" + extra + "\n" + site.source_toml(), encoding="utf-8")


def test_null_pagers_are_skipped_and_counted_by_check_and_run_alike(site, demo_exporter, cli):
    home = demo_exporter.home
    site.execute("UPDATE {p}_phones SET number = NULL WHERE phone_type IN ('pager', 'mobile')")
    emptied = site.count("phones") - _count(site, "SELECT COUNT(*) FROM {p}_phones WHERE number IS NOT NULL")
    assert emptied > 100
    _configure(home, site)

    code, out, err = cli("check")
    assert code == 0, err
    assert f"skipped {emptied} contact methods with an empty value" in out
    assert "snapshot 1 was built and sealed" in out
    assert State(home.state).last_version() == 0  # a dry run takes no number

    code, out, err = cli("run")
    assert code == 0, err
    assert f"skipped {emptied} contact methods with an empty value" in out
    [run] = State(home.state).runs()
    assert any(f"skipped {emptied}" in w for w in run.warnings)
    conn = open_database(demo_exporter.open_newest("desk-a"))
    assert conn.execute("SELECT COUNT(*) FROM contact_methods WHERE value = ''").fetchone()[0] == 0


def test_refusing_empty_values_fails_check_and_run_the_same_way_and_says_what_to_do(site, demo_exporter, cli):
    home = demo_exporter.home
    site.execute("UPDATE {p}_phones SET number = NULL WHERE phone_type = 'pager'")
    _configure(home, site, '[checks]\nempty_contacts = "refuse"\n')

    check_code, out, check_err = cli("check")
    run_code, out, run_err = cli("run")
    assert check_code == run_code == 3
    for err in (check_err, run_err):
        assert "value is empty" in err and "What to do: filter NULL or empty numbers" in err
        assert "empty_contacts" in err
    assert State(home.state).last_version() == 0
    assert demo_exporter.snapshots("desk-a") == []


def test_a_forced_run_publishes_after_a_purge_and_reports_what_it_dropped(site, demo_exporter, cli):
    home = demo_exporter.home
    _configure(home, site)
    assert cli("run")[0] == 0
    # HR deactivates 40% of the people; the on-call system still has their shifts.
    people = [row[0] for row in _rows(site, "SELECT person_id FROM {p}_people WHERE entry_type = 'person' "
                                            "ORDER BY person_id")]
    purged = people[: len(people) * 2 // 5]
    for start in range(0, len(purged), 500):
        chunk = ", ".join(f"'{pid}'" for pid in purged[start:start + 500])
        site.execute(f"UPDATE {{p}}_people SET active = 0 WHERE person_id IN ({chunk})")
    orphaned = _count(site, "SELECT COUNT(*) FROM {p}_oncall_assignments a JOIN {p}_people p "
                            "ON p.person_id = a.person_id WHERE p.active = 0 "
                            "AND a.ends_at > :window_start AND a.starts_at < :window_end", window=True)
    assert orphaned > 0

    code, out, err = cli("run")
    assert code == 52 and "drop" in err

    code, out, err = cli("check", "--force")
    assert code == 0, err
    assert f"dropped {orphaned} shifts of" in out and "no longer in the directory" in out

    code, out, err = cli("run", "--force")
    assert code == 0, err
    assert f"dropped {orphaned} shifts of" in out
    assert "Published snapshot 2" in out
    conn = open_database(demo_exporter.open_newest("desk-a"))
    dangling = conn.execute("SELECT COUNT(*) FROM oncall_shifts WHERE listing_id NOT IN "
                            "(SELECT id FROM listings)").fetchone()[0]
    assert dangling == 0
    assert conn.execute("SELECT COUNT(*) FROM listings WHERE id = ?", (purged[0],)).fetchone()[0] == 0
    [forced, *_] = State(home.state).runs()
    assert forced.forced and any(f"dropped {orphaned} shifts" in w for w in forced.warnings)


def _rows(site, sql: str, window: bool = False):
    from datetime import timedelta

    from sqlalchemy import text

    params = {}
    if window:
        now = utc_now()
        tz = site.engine.dialect.name == "postgresql"
        start, end = now - timedelta(days=14), now + timedelta(days=60)
        params = {"window_start": start if tz else start.replace(tzinfo=None),
                  "window_end": end if tz else end.replace(tzinfo=None)}
    with site.engine.connect() as conn:
        return conn.execute(text(sql.replace("{p}", site.prefix)), params).fetchall()


def _count(site, sql: str, window: bool = False) -> int:
    return int(_rows(site, sql, window)[0][0])
