"""Checks before publishing: empty source, big drops, broken references, overlaps, coverage gaps; overrides."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone

import pytest

from backup_operator.core.model import format_utc

from exporter.checks import run_checks
from exporter.config import CheckSettings
from exporter.sources import DirectoryData
from exporter.state import State

from exporter_support import DEMO, demo_sources_toml

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def shift(schedule, tier, listing, start_h, end_h, base=NOW):
    return {"schedule_id": schedule, "tier": tier, "listing_id": listing,
            "start_utc": format_utc(base + timedelta(hours=start_h)),
            "end_utc": format_utc(base + timedelta(hours=end_h))}


def small_directory(**changes) -> DirectoryData:
    data = DirectoryData(
        listings=[{"id": "a", "kind": "person", "display_name": "A"}, {"id": "b", "kind": "person", "display_name": "B"},
                  {"id": "dept", "kind": "department", "display_name": "Dept"}],
        contact_methods=[{"listing_id": "a", "kind": "extension", "value": "4471"}],
        schedules=[{"id": "s1", "name": "S1", "timezone": "America/New_York", "fallback_listing_id": "dept"}],
        shifts=[shift("s1", 1, "a", -12, 84), shift("s1", 1, "b", 84, 200)],
    )
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def report_for(data, baseline=None, **settings):
    return run_checks(data, now=NOW, baseline=baseline, settings=CheckSettings(**settings))


def by_name(report):
    return {r.name: r for r in report.results}


def test_a_good_directory_passes():
    report = report_for(small_directory())
    assert report.passed, report.describe()


def test_no_listings_refuses():
    report = report_for(DirectoryData())
    assert not report.passed and report.failures[0].name == "no_listings"
    assert "0 listings" in report.summary()


def test_a_drop_beyond_the_threshold_names_the_numbers():
    report = report_for(small_directory(), baseline={"listings": 10, "contact_methods": 1})
    drop = by_name(report)["drop"]
    assert not drop.ok
    assert drop.message == "listings fell from 10 to 3 (-70.0%, the limit is 10%)"
    assert by_name(report_for(small_directory(), baseline={"listings": 3, "contact_methods": 1}))["drop"].ok
    assert by_name(report_for(small_directory(), baseline={"listings": 10}, max_drop_percent=80))["drop"].ok


def test_broken_references_are_listed_row_by_row():
    data = small_directory(
        contact_methods=[{"listing_id": "ghost", "kind": "pager", "value": "12345"}],
        schedules=[{"id": "s1", "name": "S1", "timezone": "UTC", "fallback_listing_id": "nobody"}],
        shifts=[shift("s1", 1, "a", -12, 200), shift("s9", 1, "b", 0, 5), shift("s1", 2, "zed", 0, 5)])
    refs = by_name(report_for(data))["references"]
    assert not refs.ok and refs.total_rows == 4
    assert "contact method 1 (pager 12345): listing 'ghost' does not exist" in refs.rows
    assert "on-call schedule 's1': fallback listing 'nobody' does not exist" in refs.rows
    assert any("schedule 's9' does not exist" in r for r in refs.rows)
    assert any("listing 'zed' does not exist" in r for r in refs.rows)


def test_overlapping_shifts_at_the_same_tier_are_listed():
    data = small_directory(shifts=[shift("s1", 1, "a", -12, 100), shift("s1", 1, "b", 90, 200),
                                   shift("s1", 2, "b", -12, 200)])
    overlaps = by_name(report_for(data))["overlaps"]
    assert not overlaps.ok and overlaps.total_rows == 1
    assert overlaps.rows[0] == ("s1 tier 1: a until Thu 2026-11-05 11:00 EST overlaps b from "
                                "Thu 2026-11-05 01:00 EST")


def test_coverage_gaps_in_the_next_seven_days_in_local_time():
    data = small_directory(shifts=[shift("s1", 1, "a", -12, 30), shift("s1", 1, "b", 40, 150)])
    coverage = by_name(report_for(data))["coverage"]
    assert not coverage.ok
    assert coverage.rows == [
        "s1 tier 1: nobody on call from Mon 2026-11-02 13:00 EST to Mon 2026-11-02 23:00 EST",
        "s1 tier 1: nobody on call from Sat 2026-11-07 13:00 EST to the end of the 7 days checked",
    ]
    empty = by_name(report_for(small_directory(shifts=[])))["coverage"]
    assert empty.rows == ["s1 tier 1: nobody on call in the next 7 days"]
    assert by_name(report_for(small_directory(shifts=[]), coverage_exempt=["s1"]))["coverage"].ok


def test_unmatched_calendar_names_warn_but_never_refuse():
    data = small_directory(warnings=["unmatched: feed: 'Dr. Zed' matches no listing (3 events)"])
    report = report_for(data)
    assert report.passed and report.warnings[0].rows == ["feed: 'Dr. Zed' matches no listing (3 events)"]


# --- through the command line --------------------------------------------------------------------


def _write_demo_subset(folder, drop_fraction: float) -> dict:
    """A copy of the demo CSVs without ``drop_fraction`` of the listings (never one a rota needs)."""
    folder.mkdir(exist_ok=True)
    rotas = json.loads((DEMO / "rotas.json").read_text(encoding="utf-8"))
    needed = {m for r in rotas["rotas"] for m in r["members"]}
    rows = list(csv.DictReader(open(DEMO / "listings.csv", newline="", encoding="utf-8")))
    droppable = [r["id"] for r in rows if r["kind"] == "person" and r["id"] not in needed]
    gone = set(droppable[: round(len(rows) * drop_fraction)])
    for name in ("listings", "contact_methods"):
        src = list(csv.DictReader(open(DEMO / f"{name}.csv", newline="", encoding="utf-8")))
        key = "id" if name == "listings" else "listing_id"
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(src[0]))
            writer.writeheader()
            writer.writerows(r for r in src if r[key] not in gone)
    for name in ("schedules.csv", "rotas.json"):
        (folder / name).write_bytes((DEMO / name).read_bytes())
    return {"before": len(rows), "after": len(rows) - len(gone)}


def test_an_empty_source_is_refused_and_force_publishes(demo_exporter, cli, tmp_path):
    folder = tmp_path / "empty"
    _write_demo_subset(folder, 0)
    (folder / "listings.csv").write_text((DEMO / "listings.csv").read_text().splitlines()[0] + "\n")
    (folder / "contact_methods.csv").write_text((DEMO / "contact_methods.csv").read_text().splitlines()[0] + "\n")
    demo_exporter.home.config.write_text(demo_sources_toml(folder), encoding="utf-8")
    code, out, err = cli("run")
    assert code == 52
    assert "refused and nothing was published: the sources gave 0 listings" in err
    assert demo_exporter.snapshots("desk-a") == []
    assert State(demo_exporter.home.state).runs()[0].result == "refused"


def test_a_30_percent_drop_is_refused_with_the_numbers_then_force_publishes(demo_exporter, cli, tmp_path):
    assert cli("run")[0] == 0  # the baseline: the whole demo hospital
    numbers = _write_demo_subset(tmp_path / "smaller", 0.30)
    demo_exporter.home.config.write_text(demo_sources_toml(tmp_path / "smaller"), encoding="utf-8")

    code, out, err = cli("check")
    assert code == 52 and "An export would be refused" in err
    assert "FAIL drop" in out

    code, out, err = cli("run")
    assert code == 52
    before, after = numbers["before"], numbers["after"]
    assert f"listings fell from {before} to {after} (-30.0%, the limit is 10%)" in err
    assert "contact methods fell from" in err
    assert [p.name for p in demo_exporter.snapshots("desk-a")] == ["snapshot-000000000001.bosnap"]

    code, out, err = cli("run", "--force")
    assert code == 0, err
    assert "Checks FAILED and were overridden" in out and "Published snapshot 2" in out
    latest = State(demo_exporter.home.state).runs()[0]
    assert latest.forced and latest.result == "published"
    assert any("checks overridden by --force" in w for w in latest.warnings)
    log = (demo_exporter.home.logs / "exporter.log").read_text()
    assert "check drop FAILED but overridden by --force: listings fell from" in log

    # The forced snapshot is the new baseline: the next run passes without --force.
    code, out, err = cli("run")
    assert code == 0, err


def test_config_force_is_an_override_too_and_is_logged(demo_exporter, cli, tmp_path):
    assert cli("run")[0] == 0
    _write_demo_subset(tmp_path / "smaller", 0.30)
    demo_exporter.home.config.write_text("[checks]\nforce = true\n" + demo_sources_toml(tmp_path / "smaller"),
                                         encoding="utf-8")
    code, out, err = cli("run")
    assert code == 0, err
    log = (demo_exporter.home.logs / "exporter.log").read_text()
    assert "overridden by [checks] force = true" in log


def test_status_shows_the_refused_run(demo_exporter, cli, tmp_path):
    folder = tmp_path / "empty"
    _write_demo_subset(folder, 0)
    (folder / "listings.csv").write_text((DEMO / "listings.csv").read_text().splitlines()[0] + "\n")
    demo_exporter.home.config.write_text(demo_sources_toml(folder), encoding="utf-8")
    cli("run")
    code, out, err = cli("status")
    assert code == 57  # monitoring sees the refused run (issue 11 #4: status used to exit 0 always)
    assert "REFUSED" in out and "0 listings" in out and "Health: CRITICAL" in out
    assert "desk-a" in out and "NO RECEIPT" in out


@pytest.mark.parametrize("bad", ["listings", "contact"])
def test_a_malformed_csv_names_file_and_line(demo_exporter, cli, tmp_path, bad):
    folder = tmp_path / "bad"
    _write_demo_subset(folder, 0)
    target = folder / ("listings.csv" if bad == "listings" else "contact_methods.csv")
    lines = target.read_text().splitlines()
    lines[5] = lines[5] + (',"extra field' if bad == "listings" else ",unquoted extra")
    target.write_text("\n".join(lines) + "\n")
    demo_exporter.home.config.write_text(demo_sources_toml(folder), encoding="utf-8")
    code, out, err = cli("run")
    assert code == 51
    assert target.name in err and "line 6" in err and err.count("\n") == 1
    assert demo_exporter.snapshots("desk-a") == []
