"""``backup-operator oncall``: who is on call from a terminal or a script, now or at a time."""

from __future__ import annotations

import json

import pytest

from backup_operator import cli
from backup_operator.core.model import build_database


def _install(desk, kit, version: int, records: dict | None = None) -> None:
    created = kit.created_at(version)
    database = build_database(**(records or kit.template_records()), snapshot_version=version,
                              created_at=created, expires_at=created.replace(year=2027),
                              expected_interval_s=3600, source="oncall test")
    desk.drop(version, database=database)
    assert desk.store().sync([desk.inbox]).installed == [version]


def _run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["oncall", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _holder_by_sql(desk, schedule: str, tier: int, at_utc: str) -> str:
    """Who the snapshot itself says holds a tier at an instant: plain SQL, not the code under test."""
    from backup_operator.core.store import SnapshotStore

    store = SnapshotStore(desk.snapshots, trusted=[desk.signer.public], key=lambda: desk.key)
    opened = store.open_newest()
    try:
        row = opened.conn.execute(
            "SELECT l.display_name FROM oncall_shifts s JOIN listings l ON l.id = s.listing_id WHERE s.schedule_id = ?"
            " AND s.tier = ? AND s.start_utc <= ? AND s.end_utc > ?", (schedule, tier, at_utc, at_utc)).fetchone()
        return row[0]
    finally:
        opened.close()


def test_who_is_on_call_at_a_wall_time_in_the_schedules_zone(desk, kit, capsys):
    _install(desk, kit, 3)
    # 12:00 in New York on 7 March 2026 is 17:00 UTC (EST, UTC-5).
    code, out, _ = _run(capsys, "cardio-attending", "--at", "2026-03-07 12:00")
    assert code == 0, out
    assert f"Tier 1 Attending: {_holder_by_sql(desk, 'cardio-attending', 1, '2026-03-07T17:00:00Z')}" in out
    assert "Tier 1 Attending: Zyxwquorth Canarysson, Attending cardiologist" in out
    assert "until Sat 07 Mar 18:00 EST (UTC−05:00) (in 6 h 0 min)" in out
    assert "Pager 4471" in out and "Mobile 608-555-0147 — Text only" in out, "every method, with instructions"
    assert "next: Vexmilda Quorrathen from Sat 07 Mar 18:00 EST" in out
    assert "Tier 2 Backup: Amelia Hart" in out
    assert "Escalation ladder:" in out and "3. Department line: Cardiology — Extension 4400" in out
    assert "Instructions: Page tier 1, then tier 2" in out
    assert out.startswith("Data as of 2026-03-07 14:00 UTC")


@pytest.mark.parametrize("at", ["2026-03-07T23:30:00Z", "2026-03-07T18:30-05:00", "2026-03-07 18:30"])
def test_words_and_offsets(desk, kit, capsys, at):
    _install(desk, kit, 3)
    code, out, _ = _run(capsys, "cardiology", "--at", at)  # words, not the id
    assert code == 0
    assert "Cardiology — attending (cardio-attending)" in out
    assert f"Tier 1 Attending: {_holder_by_sql(desk, 'cardio-attending', 1, '2026-03-07T23:30:00Z')}" in out
    assert "Vexmilda Quorrathen" in out.split("Tier 1")[1].splitlines()[0]


def test_json_for_scripts(desk, kit, capsys):
    _install(desk, kit, 3)
    code, out, _ = _run(capsys, "cardio on call", "--at", "2026-03-07 12:00", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["schedule"]["id"] == "cardio-attending" and data["snapshot_version"] == 3
    assert data["at"]["utc"] == "2026-03-07T17:00:00Z" and data["now"] is False
    tier1 = data["tiers"][0]
    assert tier1["who"]["name"] == "Zyxwquorth Canarysson"
    assert [c["value"] for c in tier1["who"]["contacts"]] == ["4471", "608-555-0147"]
    assert tier1["who"]["contacts"][1]["instructions"] == "Text only"
    assert tier1["until"]["utc"] == "2026-03-07T23:00:00Z" and tier1["next"]["name"] == "Vexmilda Quorrathen"
    assert [step["who"] for step in data["ladder"]] == ["Zyxwquorth Canarysson", "Amelia Hart", "Cardiology"]
    assert data["data_warning"], "old test data is reported as old"


def test_nobody_on_call_names_the_department_line(desk, kit, capsys):
    _install(desk, kit, 3)
    code, out, _ = _run(capsys, "cardio-attending", "--at", "2026-03-10 12:00")
    assert code == 0
    assert "NOBODY is on call at this time. Call the department line: Cardiology, Extension 4400." in out


def test_no_such_schedule_and_a_bad_time(desk, kit, capsys):
    _install(desk, kit, 3)
    code, _, err = _run(capsys, "zzqxv")
    assert code == 1 and "No on-call schedule matches 'zzqxv'" in err and "cardio-attending" in err
    code, _, err = _run(capsys, "cardio-attending", "--at", "teatime")
    assert code == 2 and "--at 'teatime' is not a time" in err


def test_hostile_names_cannot_steer_the_terminal(desk, kit, capsys):
    records = kit.template_records()
    records["listings"][0]["display_name"] = "Evil\x1b]0;pwned\x07\x1b[2J Name\u202eoof"
    records["contact_methods"][1]["instructions"] = "Text\r\nFAKE LINE\x1b[31m"
    _install(desk, kit, 3, records)
    code, out, _ = _run(capsys, "cardio-attending", "--at", "2026-03-07 12:00")
    assert code == 0
    assert not any(ch in out for ch in "\x1b\x07\u202e\r"), repr(out)
    assert "Evil\\x1b]0;pwned\\x07\\x1b[2J Name<U+202E>oof" in out and "Text\\r⏎FAKE LINE\\x1b[31m" in out


def test_help_lists_the_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["oncall", "--help"])
    assert "--at TIME" in capsys.readouterr().out
