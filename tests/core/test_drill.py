"""The drill engine: questions drawn from the data, answers checked against it, timed, and a receipt
that carries no directory data."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pytest

from backup_operator.core import drill as D
from backup_operator.core.model import open_database

NOW = datetime(2026, 3, 7, 14, 0, tzinfo=timezone.utc)  # the canary is the attending until 23:00


@pytest.fixture
def conn(kit):
    return open_database(kit.database_for(1))


def test_one_question_of_each_kind_with_the_directorys_answers(conn, kit):
    questions = D.generate(conn, NOW, random.Random(3))
    kinds = [q.kind for q in questions]
    assert kinds == ["on call now", "extension", "reverse number", "department line"] or kinds == list(D.KINDS)
    by_kind = {q.kind: q for q in questions}
    assert by_kind["on call now"].accepted_names == (kit.CANARIES[0],)
    assert by_kind["on call now"].text == "Who is on call now for Cardiology — attending?"
    assert by_kind["extension"].accepted_numbers == ("4402",) and kit.CANARIES[1] in by_kind["extension"].text
    assert by_kind["department line"].accepted_numbers == ("4400",)
    assert by_kind["department line"].expected == "4400"
    # the same seed, the same drill
    assert D.generate(conn, NOW, random.Random(3)) == questions


def test_as_of_asks_about_a_later_shift_and_knows_who_holds_it(conn, kit):
    questions = [q for seed in range(20) for q in D.generate(conn, NOW, random.Random(seed)) if q.kind == "as of"]
    assert questions, "no as-of question could be drawn from the template's shifts"
    for q in questions:
        at = datetime.fromisoformat(q.at.replace("Z", "+00:00"))
        assert at > NOW
        expected = kit.CANARIES[0] if at < datetime(2026, 3, 7, 23, tzinfo=timezone.utc) else kit.CANARIES[1]
        assert q.accepted_names == (expected,)
        assert " EST?" in q.text or " EDT?" in q.text  # the wall time in the schedule's zone


def test_answers_are_checked_forgivingly_but_never_accept_someone_else(kit):
    name = D.Question("on call now", "?", accepted_names=("Vexmilda Quorrathen",))
    for good in ("Vexmilda Quorrathen", "quorrathen vexmilda", "Dr Vexmilda Quorathen", "VEXMILDA QUORRATHEN, MD"):
        assert D.check_answer(name, good), good
    for bad in ("", "Amelia Hart", "Vexmilda", "Quorrathen Smith", "4402"):
        assert not D.check_answer(name, bad), bad
    number = D.Question("department line", "?", accepted_numbers=("6085554400", "4400"))
    for good in ("4400", "608-555-4400", "(608) 555 4400", "555-4400"):
        assert D.check_answer(number, good), good
    for bad in ("4401", "400", "608-555-4401", "Cardiology"):
        assert not D.check_answer(number, bad), bad


def test_a_drill_times_each_answer_and_its_receipt_holds_no_directory_data(conn, kit):
    ticks = iter([0.0, 12.5, 30.0, 95.0, 100.0, 130.0, 131.0])
    questions = D.generate(conn, NOW, random.Random(3))
    drill = D.Drill(questions, desktop="switchboard-1", operator="ana", snapshot_version=1,
                    data_as_of=NOW, now=lambda: NOW, clock=lambda: next(ticks), seed=3)
    answers = []
    for q in questions:
        if q.kind == "reverse number":
            answers.append(drill.skip())
        else:
            answers.append(drill.answer(q.accepted_names[0] if q.accepted_names else q.accepted_numbers[0]))
    assert drill.done and drill.current is None
    with pytest.raises(IndexError):
        drill.answer("x")
    assert [a.seconds for a in answers][:3] == [12.5, 17.5, 65.0]
    result = drill.finish([{"name": "key store", "ok": True}, {"name": "data age", "ok": True}])
    assert result.correct == len(questions) - 1 and result.slow == 1
    assert result.passed == (result.correct >= D.PASS_CORRECT)
    receipt = json.dumps(result.receipt())
    for secret in (*kit.CANARIES, "4402", "4400", "Cardiology", "608-555"):
        assert secret not in receipt
    failed_kit = drill.finish([{"name": "data age", "ok": False}])
    assert not failed_kit.passed and not failed_kit.kit_ok


def test_a_directory_without_on_call_data_still_drills_what_it_has(kit):
    from datetime import timedelta

    from backup_operator.core.model import build_database

    records = kit.template_records()
    records["shifts"], records["schedules"] = [], []
    db = build_database(**records, snapshot_version=1, created_at=NOW, expires_at=NOW + timedelta(days=1),
                        expected_interval_s=900, source="t")
    kinds = [q.kind for q in D.generate(open_database(db), NOW, random.Random(1))]
    assert "on call now" not in kinds and "as of" not in kinds and "extension" in kinds
