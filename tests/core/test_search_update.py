"""A stored search index updated for a delta (search/update.py) is the index a full build gives.

Random directories and day-of-edits change sets (people join and leave, names, titles, departments,
family names and numbers change, schedules come and go), applied as a desktop applies a chain: the
updated index is compared with a full build of the same resulting database, array by array in a form
that does not depend on word or phrase ids, and query by query; and with the exporter's own full
snapshot of the new version, query by query by listing id.
"""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from backup_operator.core import delta as D
from backup_operator.core.search import SearchIndex, store_index
from backup_operator.core.search.candidates import vocabulary_arrays
from backup_operator.core.search.index import write_index_in
from backup_operator.core.search import update as U
from backup_operator.core.search.update import IndexUpdate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "distribution"))
from directory_changes import FAMILY, GIVEN, build, change, directory  # noqa: E402

QUERIES = ["amelia", "hart", "okafor", "o'brien", "obrien", "novak", "zhang garcia", "cardiology", "radiology nurse",
           "attending", "fellow", "clerk", "north", "main", "doc", "chief", "dr x", "night float", "emergency",
           "608", "555", "608-555-1", "4471", "jonas mueller", "ngozi", "soren", "lea", "matteo", "amila", "zang",
           "kowalsky", "nguyen", "pharmacy", "neuro", "onc", "pediatrics 5", "1", "12", "room", "hart 3",
           "renamed", "moved", "attending 7", "nurse 42"]


@pytest.fixture(autouse=True)
def small_directories_update_too(monkeypatch):
    """These directories are small, and a day's edits touch a good share of them: update them anyway."""
    monkeypatch.setattr(U, "MAX_CHANGED_SHARE", 1.0)


def opened(database: bytes) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.deserialize(database)
    return conn


def renamed(records: dict, seed: int) -> dict:
    """Extra edits the random change sets leave out: family and given names, and a word no one had."""
    rng = random.Random(seed)
    for row in rng.sample(records["listings"], min(4, len(records["listings"]))):
        what = rng.randrange(3)
        if what == 0:
            row["family_name"] = rng.choice(FAMILY + ["Renamed"])
            row["display_name"] = f"{row.get('given_name', '')} {row['family_name']}"
        elif what == 1:
            row["given_name"] = rng.choice(GIVEN)
        else:
            row["title"] = f"Moved{rng.randrange(1000)}"
    return records


def updated(base: bytes, deltas: list[D.RowDelta]) -> tuple[sqlite3.Connection, SearchIndex]:
    """The chain applied as chain.materialise applies it, and the index updated for it."""
    conn = opened(base)
    decoded = [D.decode_delta(D.encode_delta(d)) for d in deltas]
    update = IndexUpdate.prepare(conn, decoded)
    assert update is not None, "the stored index should be updated, not built"
    D.apply_chain(conn, decoded, renumbered=update.renumbered)
    index = update.finish(conn)
    assert index is not None, "the stored index should be updated, not built"
    return conn, index


def canonical(index: SearchIndex) -> dict:
    """Everything a query reads, with words and phrases named by their text instead of their ids."""
    A, terms = index._arrays, index.vocabulary.terms
    out = {name: A[name].tolist() for name in ("kind", "rowid", "name_len", "name_rank")}
    rt_term = np.repeat(np.arange(len(terms)), np.diff(A["rt_off"]))
    out["names"] = sorted(zip([terms[t] for t in rt_term], A["rt_rows"].tolist(), A["rt_field"].tolist()))
    words: dict[int, list[str]] = {}
    for term, start, end in zip(range(len(terms)), A["pt_off"][:-1].tolist(), A["pt_off"][1:].tolist()):
        for phr in A["pt_phr"][start:end].tolist():
            words.setdefault(phr, []).append(terms[term])
    phrases: dict[tuple, set] = {}
    for phr, field in enumerate(A["phrase_field"].tolist()):
        rows = A["pr_rows"][A["pr_off"][phr]:A["pr_off"][phr + 1]].tolist()
        if rows:
            phrases.setdefault((field, tuple(sorted(words[phr]))), set()).update(rows)
    out["phrases"] = phrases
    out["vocabulary"] = sorted(terms)
    out["df_prior"] = dict(zip(terms, A["df_prior"].tolist()))
    for way in ("fwd", "rev"):
        keys = A[f"num_{way}"]
        assert (np.diff(keys) >= 0).all()
        out[way] = sorted(zip(keys.tolist(), A[f"num_{way}_row"].tolist(), A[f"num_{way}_kind"].tolist()))
    return out


def results(index: SearchIndex, key) -> dict[str, list]:
    return {q: [key(h) for h in index.search(q, limit=1000)] for q in QUERIES} | \
        {f"reverse {n}": [key(h) for h in index.reverse_lookup(n)] for n in ("6085551234", "+1 608 555 0042")}


def check(conn: sqlite3.Connection, index: SearchIndex, exporter_full: bytes) -> None:
    built = SearchIndex.build(conn)
    assert canonical(index) == canonical(built)
    # the word list's own arrays are those its words and frequencies give
    terms, A = index.vocabulary.terms, index._arrays
    df = np.diff(A["rt_off"]).astype(np.float64)
    pt_term = np.repeat(np.arange(len(terms)), np.diff(A["pt_off"]))
    df += np.bincount(pt_term, weights=np.diff(A["pr_off"])[A["pt_phr"]].astype(np.float64), minlength=len(terms))
    for name, arr in vocabulary_arrays(terms, df).items():
        assert np.array_equal(arr, A[name]), name
    # the same answers, in the same order, as the full build of this database
    assert results(index, lambda h: (h.kind, h.id, round(h.score, 6))) == \
        results(built, lambda h: (h.kind, h.id, round(h.score, 6)))
    # and the same answers as the exporter's full snapshot (its rows are numbered otherwise, so equal
    # scores may list in another order: compared as sets)
    exporter = opened(exporter_full)
    theirs = SearchIndex.open(exporter)
    by_set = lambda h: (h.kind, h.id, round(h.score, 6))  # noqa: E731
    for q, ours in results(index, by_set).items():
        assert sorted(ours) == sorted(results(theirs, by_set)[q]), q
    # stored and loaded again, it is what the desktop opens
    write_index_in(conn, index)
    again = SearchIndex.open(conn)
    assert canonical(again) == canonical(index)


@pytest.mark.parametrize("seed", range(12))
def test_an_updated_index_is_a_full_build(seed):
    old_records = directory(seed, 150)
    new_records = renamed(change(old_records, seed + 1, changes=25), seed + 2)
    old, new = store_index(build(old_records, 7)), store_index(build(new_records, 8))
    conn, index = updated(old, [D.compute_delta(old, new)])
    check(conn, index, new)


@pytest.mark.parametrize("seed", range(4))
def test_an_index_updated_for_a_chain_is_a_full_build(seed):
    versions = [directory(100 + seed, 120)]
    for step in range(4):
        versions.append(renamed(change(versions[-1], seed * 10 + step, changes=15), seed * 10 + step))
    databases = [store_index(build(r, 10 + n)) for n, r in enumerate(versions)]
    deltas = [D.compute_delta(a, b) for a, b in zip(databases, databases[1:])]
    conn, index = updated(databases[0], deltas)
    check(conn, index, databases[-1])


def test_a_delta_that_changes_only_numbers_updates_them():
    records = directory(5, 80)
    changed = change(records, 6, changes=0)
    for contact in changed["contact_methods"][:5]:
        contact["value"] = "608-555-0042"
    changed["contact_methods"].pop(7)
    old, new = store_index(build(records, 1)), store_index(build(changed, 2))
    conn, index = updated(old, [D.compute_delta(old, new)])
    assert {h.id for h in index.reverse_lookup("6085550042")} >= \
        {c["listing_id"] for c in changed["contact_methods"][:5] if c["kind"] != "email"}
    check(conn, index, new)


def test_no_stored_index_or_too_many_changes_means_a_build(monkeypatch):
    monkeypatch.setattr(U, "MAX_CHANGED_SHARE", 0.2)
    records = directory(8, 60)
    bare = build(records, 1)
    new = build(change(records, 9), 2)
    assert IndexUpdate.prepare(opened(bare), [D.compute_delta(bare, new)]) is None
    old = store_index(bare)
    everyone = build(dict(records, listings=[dict(r, title="Everyone changed") for r in records["listings"]]), 2)
    assert IndexUpdate.prepare(opened(old), [D.compute_delta(old, store_index(everyone))]) is None
