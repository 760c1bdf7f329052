"""The age of the data: one verdict, worded for an outage, that the window, status and kit-check share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backup_operator import cli
from backup_operator.core.freshness import AMBER, CLOCK, OK, RED, freshness
from backup_operator.core.kit import run_kit_checks
from backup_operator.core.model import SnapshotMeta, build_database
from backup_operator.core.wording import describe_age

CREATED = datetime(2026, 3, 7, 11, 0, tzinfo=timezone.utc)
META = SnapshotMeta(snapshot_version=9, schema_version=1, created_at=CREATED,
                    expires_at=CREATED + timedelta(days=3), expected_interval_s=15 * 60, source="test",
                    counts={"listings": 3})


@pytest.mark.parametrize("after, level", [
    (timedelta(minutes=10), OK),
    (timedelta(minutes=-4), OK),  # exporter and desktop clocks a few minutes apart: just made
    (timedelta(minutes=23), AMBER),  # more than 1.5 x the 15-minute interval
    (timedelta(minutes=46), RED),  # more than 3 x
    (timedelta(days=3), RED),  # expired
    (timedelta(minutes=-6), CLOCK),  # this computer's clock is behind the data's own time
    (timedelta(days=-400), CLOCK),
])
def test_levels(after, level):
    assert freshness(META, 9, CREATED + after).level == level


def test_an_outage_is_worded_as_an_outage():
    """Updates stop because the servers are down: the words say how to keep working, not "call IT now"."""
    for after in (timedelta(minutes=30), timedelta(hours=5), timedelta(days=4)):
        verdict = freshness(META, 9, CREATED + after)
        assert "department line" in verdict.banner and "department line" in verdict.short
        assert "outage" in verdict.summary or "down" in verdict.banner
        assert "Tell IT now" not in verdict.banner
        assert "\n" not in verdict.short and len(verdict.short) < 110, "the acknowledged state is one line"
        assert describe_age(CREATED, CREATED + after) in verdict.short, "the short line still says the age"
        assert "Ctrl" not in verdict.summary, "the command line's sentence names no window shortcut"


def test_a_clock_behind_the_data_is_never_fresh():
    now = CREATED - timedelta(hours=2)
    verdict = freshness(META, 9, now)
    assert verdict.level == CLOCK and not verdict.fresh
    assert "clock" in verdict.line and "ago" not in verdict.line
    assert "wrong shift" in verdict.banner and "clock" in verdict.short.lower()
    assert "clock" in describe_age(CREATED, now)


def _install(desk, kit, version: int, created: datetime) -> None:
    database = build_database(**kit.template_records(), snapshot_version=version, created_at=created,
                              expires_at=created + timedelta(days=3), expected_interval_s=3600, source="test")
    desk.drop(version, database=database)
    assert desk.store().sync([desk.inbox]).installed == [version]


def test_kit_check_is_not_ready_when_the_clock_is_behind(desk, kit, capsys):
    _install(desk, kit, 4, datetime.now(timezone.utc) + timedelta(hours=3))  # made "in the future" by this clock
    code = cli.main(["kit-check"])
    out = capsys.readouterr().out
    assert code == 60, out
    line = next(row for row in out.splitlines() if row[6:].startswith("clock"))
    assert line.startswith("FAIL") and "behind" in line
    assert "NOT ready" in out and "This kit is ready" not in out


def test_kit_check_clock_line_passes_on_a_right_clock(desk, kit):
    created = datetime.now(timezone.utc) - timedelta(minutes=5)
    _install(desk, kit, 5, created)
    checks = {r.name: r for r in run_kit_checks(desk.desktop, now=created + timedelta(minutes=5))}
    assert checks["clock"].ok and checks["data age"].ok
    behind = {r.name: r for r in run_kit_checks(desk.desktop, now=created - timedelta(hours=1))}
    assert not behind["clock"].ok and behind["clock"].exit_code == 60


def test_status_warns_about_old_data_and_a_clock_behind(desk, kit, capsys):
    _install(desk, kit, 6, datetime.now(timezone.utc) + timedelta(hours=3))
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Warning: This computer's clock" in out and "wrong shift" in out
    _install(desk, kit, 7, datetime.now(timezone.utc) - timedelta(hours=10))
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Warning: OLD DATA" in out and "department line" in out
