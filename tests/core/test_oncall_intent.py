"""Questions about who is on call put the right department's schedule first, on the demo hospital."""

from __future__ import annotations

import pytest
from demo_hospital import DEMO_NOW, demo_database

from backup_operator.core.model import open_database, read_meta
from backup_operator.core.oncall_intent import parse
from backup_operator.core.session import Session
from backup_operator.core.store import OpenSnapshot


@pytest.fixture(scope="module")
def demo():
    conn = open_database(demo_database())
    session = Session(OpenSnapshot(1, None, conn, read_meta(conn), None))
    yield session
    session.close()


# What operators type, and the schedule that must come first (Lakeshore Regional Health, resources/demo).
TABLE = [
    ("ED on call", "Emergency Medicine — on call"),
    ("ER on call", "Emergency Medicine — on call"),
    ("A&E on call", "Emergency Medicine — on call"),
    ("icu on call", "Critical Care — on call"),
    ("ITU oncall", "Critical Care — on call"),
    ("pharmacist on call", "Pharmacy — on call"),
    ("who is on call in pharmacy", "Pharmacy — on call"),
    ("cards on call", "Cardiology — on call"),
    ("cardiolgy on call", "Cardiology — on call"),  # a typo
    ("who is on call for cardiology", "Cardiology — on call"),
    ("peds on call", "Pediatrics — on call"),
    ("paeds on-call", "Pediatrics — on call"),
    ("nicu on call", "Neonatal Intensive Care — on call"),
    ("cicu on call", "Cardiac Intensive Care — on call"),
    ("chaplain on call", "Chaplaincy — on call"),
    ("hospitalist on call", "Hospital Medicine — on call"),  # no synonym: the hospitalists' department
    ("trauma on call", "Trauma Surgery — on call"),
    ("psych on call", "Psychiatry — on call"),
    ("IT on call", "IT Service Desk — on call"),
    ("security on call", "Security — on call"),
    ("ortho on call", "Orthopedic Surgery — on call"),
    ("renal on call", "Nephrology — on call"),
    ("GI on call", "Gastroenterology — on call"),
    ("ENT on call", "Otolaryngology — on call"),
    ("derm on call", "Dermatology — on call"),
    ("rads on call", "Radiology — on call"),
    ("IR on call", "Interventional Radiology — on call"),
    ("L&D on call", "Labor and Delivery — on call"),
    ("on call gas", "Anesthesiology — on call"),
    ("resp on call", "Respiratory Therapy — on call"),
    ("blood bank on call", "Blood Bank — on call"),
    ("heme on call", "Hematology — on call"),
    ("ob on call", "Obstetrics and Gynecology — on call"),
    ("ECG on call", "Remote ECG Reading"),
    ("who's on duty for security", "Security — on call"),
]


@pytest.mark.parametrize("query, first", TABLE, ids=[q for q, _ in TABLE])
def test_the_department_schedule_comes_first(demo, query, first):
    results = demo.search(query, 50, DEMO_NOW)
    assert results, f"{query!r} found nothing"
    top = results[0]
    assert (top.kind, top.name) == ("schedule", first), [r.name for r in results[:5]]
    assert top.subtitle.startswith(("On call now:", "Nobody on call now")), "it says who is on call"


def test_the_table_is_big_enough():
    assert len(TABLE) >= 20


def test_the_words_alone_still_find_listings_after_the_schedules(demo):
    names = [r.name for r in demo.search("ED on call", 50, DEMO_NOW)]
    assert names[0] == "Emergency Medicine — on call"
    assert names.index("Emergency Medicine") < 6, "the department line follows the schedules"
    assert "Chaplain on Call" not in names[:10]


def test_on_call_alone_lists_every_schedule(demo):
    results = demo.search("on call", 100, DEMO_NOW)
    schedules = [r for r in results if r.kind == "schedule"]
    assert len(schedules) == len(demo.schedules())
    assert [r.name for r in schedules] == sorted((r.name for r in schedules), key=str.lower)


@pytest.mark.parametrize("query, what", [
    ("ED on call", "ED"), ("on-call cards", "cards"), ("oncall", ""), ("Who's ON CALL for peds now?", "peds"),
    ("on   call icu", "icu"), ("pharmacist on duty", "pharmacist"), ("l&d on call", "l&d"),
])
def test_parse_finds_the_question(query, what):
    question = parse(query)
    assert question is not None and question.what == what


@pytest.mark.parametrize("query", ["Callahan", "don calloway", "on callahan", "oncology", "john oncall-smith",
                                   "cardiology", "", "call on"])
def test_parse_leaves_other_queries_alone(query):
    assert parse(query) is None


def test_a_person_named_like_the_question_is_still_found(demo):
    """The whole query is searched too, after the schedules: nothing the words find is lost."""
    plain = [r.id for r in demo.search("Chaplain on Call", 10, DEMO_NOW) if r.kind == "listing"]
    assert "svc-018" in plain
