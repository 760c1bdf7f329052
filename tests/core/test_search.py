"""Search: what an operator types, and which listing must come first.

Every test names the listing it expects by id (see ``conftest.py`` for the directory).
"""

from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_operator.core.model import open_database
from backup_operator.core.search import SearchIndex, Synonyms, load_synonyms, run_search_cli, store_index
from backup_operator.core.search import index as index_module



def ids(hits):
    return [h.id for h in hits]


def first(index, query):
    hits = index.search(query)
    assert hits, f"nothing found for {query!r}"
    return hits[0].id


# --------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("query", ["john smith", "smith john", "Smith, John", "smith, j", "smi joh", "SMITH JOHN",
                                   "jo smi", "john  smith ", "Dr John Smith"])
def test_names_in_any_order_and_partial(search_index, query):
    assert first(search_index, query) == "p-jsmith"


@pytest.mark.parametrize("query", ["jonh smtih", "jhon smith", "john smiht", "jon smith", "johnn smith",
                                   "john smoth", "smtih john", "johnsmith"[:4] + " smit"])
def test_typos_transposed_missing_extra_wrong_letters(search_index, query):
    assert first(search_index, query) == "p-jsmith"


def test_exact_name_beats_longer_and_similar_names(search_index):
    hits = ids(search_index.search("smith"))
    # every Smith before Smithson, Smyth before nobody it should not beat
    assert set(hits[:4]) == {"p-jsmith", "p-jasmith", "p-josmith", "p-jsmithjones"}
    assert hits.index("p-jsmithson") > 3


@pytest.mark.parametrize("query,expected", [
    ("joan smyth", "p-jsmyth"), ("jonathan smithson", "p-jsmithson"), ("jane smith", "p-jasmith"),
    ("john jones", "p-jjones"), ("mary johnson", "p-mjohnson"), ("sarah johnston", "p-sjohnston"),
    ("sara jonston", "p-sjohnston"), ("mary jonhson", "p-mjohnson"),
])
def test_similar_people_are_told_apart(search_index, query, expected):
    assert first(search_index, query) == expected


@pytest.mark.parametrize("query", ["siobhan obrien", "siobhán o'brien", "o'brien", "obrien", "O’Brien",
                                   "SIOBHAN", "dr obrien", "obrein"])
def test_accents_apostrophes_and_titles(search_index, query):
    assert first(search_index, query) == "p-obrien"


@pytest.mark.parametrize("query", ["jurgen muller", "jürgen müller", "muller", "MÜLLER j"])
def test_accented_names_fold(search_index, query):
    assert first(search_index, query) == "p-muller"


@pytest.mark.parametrize("query", ["smith-jones", "smithjones", "alice smith jones", "alice jones"])
def test_hyphenated_names(search_index, query):
    assert first(search_index, query) == "p-jsmithjones"


def test_alias_finds_the_person(search_index):
    assert first(search_index, "bob brown") == "p-rbrown"
    assert first(search_index, "bob") == "p-rbrown"


# ------------------------------------------------------------------------- departments, titles, places


@pytest.mark.parametrize("query,expected", [
    ("cardiology", "d-card"), ("cardiolgy", "d-card"), ("cardilogy", "d-card"), ("cards", "d-card"),
    ("heart center", "d-card"), ("ER", "d-ed"), ("ed", "d-ed"), ("a&e", "d-ed"), ("peds", "d-peds"),
    ("paediatrics", "d-peds"), ("pediatrcs", "d-peds"), ("nicu", "d-nicu"), ("neonatal", "d-nicu"),
    ("radiology", "d-rad"), ("xray", "d-rad"), ("onc", "d-onc"), ("pharmacy", "d-pharm"), ("rx", "d-pharm"),
    ("mri", "l-mri"), ("switchboard", "s-switch"), ("magnet", "l-mri"),
])
def test_departments_synonyms_and_places(search_index, query, expected):
    assert first(search_index, query) == expected


def test_department_comes_before_its_people_and_schedule_is_ranked_with_them(search_index):
    hits = ids(search_index.search("cardiology"))
    assert hits[0] == "d-card"
    assert "card-att" in hits[:3]
    assert "p-jsmith" in hits


def test_schedule_by_name(search_index):
    hits = search_index.search("cardiology attending")
    assert hits[0].id == "card-att" and hits[0].kind == "schedule"
    assert first(search_index, "peds resident") == "ny-peds"


def test_person_and_department_together(search_index):
    assert first(search_index, "smith radiology") == "p-josmith"
    assert first(search_index, "smith cards") == "p-jsmith"
    assert first(search_index, "john pharmacist") == "p-jjones"


def test_site_disambiguates(search_index):
    assert first(search_index, "emergency lakeview") == "s-lakeview-ed"


# ------------------------------------------------------------------------------------------- numbers


def test_extension_finds_the_extension_and_the_number_ending_with_it(search_index):
    hits = search_index.search("4471")
    assert ids(hits)[0] == "p-jsmith"
    fields = {m.field: m for m in hits[0].matches}
    assert fields["extension"].spans == ((0, 4),)
    assert fields["phone"].text == "608-555-4471" and fields["phone"].spans == ((8, 12),)


@pytest.mark.parametrize("query", ["608-555-4471", "(608) 555-4471", "608 555 4471", "6085554471", "555-4471",
                                   "+1 608 555 4471", "608.555.4471"])
def test_numbers_however_written(search_index, query):
    assert first(search_index, query) == "p-jsmith"


def test_number_beginning_while_typing(search_index):
    assert set(ids(search_index.search("608-555"))) >= {"p-jsmith", "d-card", "d-ed", "s-switch"}


def test_no_middle_of_number_match(search_index):
    # "5544" sits inside 608-555-4471 but is neither its beginning nor its end
    assert "p-jsmith" not in ids(search_index.search("5544"))


def test_reverse_lookup(search_index):
    assert ids(search_index.reverse_lookup("+1 (608) 555-4471")) == ["p-jsmith"]
    assert ids(search_index.reverse_lookup("6085554000")) == ["d-card"]
    # UK mobile on caller ID with the country code; stored with the trunk 0
    assert ids(search_index.reverse_lookup("+44 7700 900123")) == ["p-mjohnson"]
    assert ids(search_index.reverse_lookup("414 555 0199")) == ["p-patel"]
    assert search_index.reverse_lookup("+1 212 555 0000") == []
    assert search_index.reverse_lookup("12") == []


def test_email_is_not_a_number(search_index):
    assert "p-mjohnson" not in ids(search_index.search("ext:example"))


# ------------------------------------------------------------------------------ prefixes and quotes


def test_field_prefixes_restrict_and_require(search_index, directory):
    hits = search_index.search("dept:cardiology")
    assert hits and all(
        (directory.execute("SELECT department FROM listings WHERE id = ?", (h.id,)).fetchone() or
         directory.execute("SELECT department FROM oncall_schedules WHERE id = ?", (h.id,)).fetchone())[0]
        == "Cardiology" for h in hits)
    assert first(search_index, "title:charge") == "p-mjohnson"
    assert first(search_index, "john dept:pharm") == "p-jjones"
    assert first(search_index, "dept:cards smith") == "p-jsmith"
    assert first(search_index, "loc:north tower") == "l-mri"
    assert first(search_index, "room:2b-110") == "l-mri"


def test_number_prefixes(search_index):
    assert ids(search_index.search("ext:4471")) == ["p-jsmith"]
    assert ids(search_index.search("pager:30412")) == ["p-jsmith"]
    assert search_index.search("pager:4471") == []
    assert first(search_index, "mobile:07700") == "p-mjohnson"


def test_kind_filter(search_index):
    hits = search_index.search("kind:department emergency")
    assert ids(hits) and all(h.listing_kind == "department" for h in hits)
    hits = search_index.search("kind:schedule smith")
    assert hits == [] or all(h.kind == "schedule" for h in hits)
    assert ids(search_index.search("kind:sched peds")) == ["ny-peds"]


def test_exact_word_mode(search_index):
    hits = ids(search_index.search('"smith"'))
    assert set(hits) == {"p-jsmith", "p-jasmith", "p-josmith", "p-jsmithjones"}
    assert ids(search_index.search('"smyth"')) == ["p-jsmyth"]
    assert search_index.search('"smtih"') == []


def test_exact_phrase_mode(search_index):
    assert ids(search_index.search('"john smith"')) == ["p-jsmith"]
    assert ids(search_index.search('"smith john"')) == ["p-jsmith"]       # as written: "Smith, John"
    assert ids(search_index.search('"intensive care"')) == ["d-nicu", "p-nguyen"]
    assert search_index.search('"care intensive"') == []


def test_exact_number_mode(search_index):
    assert ids(search_index.search('"4471"')) == ["p-jsmith"]
    assert search_index.search('"555-4471"') == []  # not a whole number anywhere


def test_unclosed_quote_while_typing(search_index):
    assert first(search_index, '"john smi') == "p-jsmith"


@pytest.mark.parametrize("query", ["", "   ", ",,,", '""', "dept:", "kind:", "zzzzqqq", "x" * 300,
                                   "!!!@@@###", "9", "\x00", "é"])
def test_odd_queries_do_not_fail(search_index, query):
    assert isinstance(search_index.search(query), list)


def test_limit(search_index):
    assert len(search_index.search("s", limit=3)) == 3
    assert search_index.search("smith", limit=0) == []


# ------------------------------------------------------------------------------------- highlighting


def test_highlight_spans_point_at_the_typed_letters(search_index):
    hit = search_index.search("smi joh")[0]
    name = next(m for m in hit.matches if m.field == "name")
    assert name.text == "Smith, John" and name.spans == ((0, 3), (7, 10))
    assert hit.fields[0] == "name"


def test_highlight_of_folded_text_maps_to_the_original(search_index):
    hit = search_index.search("siobhan obrien")[0]
    name = next(m for m in hit.matches if m.field == "name")
    assert name.text == "Dr Siobhán O'Brien"
    assert [name.text[a:b] for a, b in name.spans] == ["Siobhán", "O'Brien"]


def test_highlight_of_a_typo_covers_the_word(search_index):
    hit = search_index.search("cardiolgy")[0]
    assert hit.matches[0].field == "name" and hit.matches[0].spans == ((0, 10),)


def test_highlight_says_which_field_matched(search_index):
    hit = next(h for h in search_index.search("charge nurse") if h.id == "p-mjohnson")
    assert "title" in hit.fields
    title = next(m for m in hit.matches if m.field == "title")
    assert [title.text[a:b] for a, b in title.spans] == ["Charge", "Nurse"]


# ---------------------------------------------------------------------------- typo property (hypothesis)

_PEOPLE = [("p-jsmith", "John", "Smith"), ("p-jsmithson", "Jonathan", "Smithson"), ("p-jsmyth", "Joan", "Smyth"),
           ("p-jjones", "John", "Jones"), ("p-mjohnson", "Mary", "Johnson"), ("p-sjohnston", "Sarah", "Johnston"),
           ("p-rbrown", "Robert", "Brown"), ("p-nguyen", "Thi", "Nguyen"), ("p-patel", "Priya", "Patel"),
           ("p-cardoso", "Ines", "Cardoso"), ("p-jasmith", "Jane", "Smith")]


def _typo(word: str, kind: int, pos: int, letter: str) -> str:
    pos = pos % (len(word) - 1)
    if kind == 0:   # transposition
        return word[:pos] + word[pos + 1] + word[pos] + word[pos + 2:]
    if kind == 1:   # missing letter
        return word[:pos] + word[pos + 1:]
    if kind == 2:   # extra letter
        return word[:pos] + letter + word[pos:]
    return word[:pos] + letter + word[pos + 1:]   # wrong letter


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(person=st.sampled_from(_PEOPLE), kind=st.integers(0, 3), pos=st.integers(1, 20),
       letter=st.sampled_from("aeiouxkz"), reorder=st.booleans())
def test_one_typo_in_the_surname_still_finds_the_person(search_index, person, kind, pos, letter, reorder):
    lid, given_name, family = person
    typo = _typo(family.lower(), kind, pos, letter)
    query = f"{typo} {given_name}" if reorder else f"{given_name} {typo}"
    assert lid in ids(search_index.search(query, limit=3))


# --------------------------------------------------------------------------------- opening and storing


def test_stored_index_loads_without_building(directory_db, monkeypatch):
    conn = open_database(store_index(directory_db))
    monkeypatch.setattr(SearchIndex, "build", classmethod(lambda cls, *a, **k: pytest.fail("rebuilt")))
    index = SearchIndex.open(conn)
    assert first(index, "jonh smtih") == "p-jsmith"
    assert ids(index.reverse_lookup("608 555 4471")) == ["p-jsmith"]


def test_stored_index_is_read_in_pieces_and_stays_read_only(directory_db, monkeypatch):
    # Read a piece at a time (the GIL is free between pieces); small pieces here so that there are many,
    # including a short last one.
    from backup_operator.core.search import index as index_module

    conn = open_database(store_index(directory_db))
    size = conn.execute("SELECT length(data) FROM search_index").fetchone()[0]
    monkeypatch.setattr(index_module, "_BLOB_PIECE", 997)
    assert size > 10 * 997 and size % 997
    monkeypatch.setattr(SearchIndex, "build", classmethod(lambda cls, *a, **k: pytest.fail("rebuilt")))
    index = SearchIndex.open(conn)
    assert first(index, "jonh smtih") == "p-jsmith"
    assert not index.kind.flags.writeable  # the loaded arrays are views of the stored bytes: never written


def test_stored_index_for_other_rows_is_rebuilt(directory_db, directory_records):
    build_directory, LISTINGS, CONTACTS = (directory_records[k] for k in ("build", "listings", "contacts"))
    other = build_directory(listings=LISTINGS[:-1], contacts=[c for c in CONTACTS if c[0] != "s-lakeview-ed"])
    stale_blob = SearchIndex.build(open_database(other)).to_bytes()
    conn = open_database(directory_db)
    with pytest.raises(ValueError):
        SearchIndex.from_bytes(conn, stale_blob)
    assert len(SearchIndex.open(conn)) == len(LISTINGS) + 4


def _with_counts(database: bytes, counts: dict | None) -> sqlite3.Connection:
    """The database with its meta ``counts`` row replaced (or removed), opened writable in memory."""
    conn = sqlite3.connect(":memory:")
    conn.deserialize(database)
    if counts is None:
        conn.execute("DELETE FROM meta WHERE key = 'counts'")
    else:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'counts'", (json.dumps(counts),))
    return conn


def test_stored_index_is_read_whole_and_checked_against_the_listing_count(directory_db, directory_records,
                                                                          monkeypatch):
    stored = store_index(directory_db)
    n = len(directory_records["listings"])
    monkeypatch.setattr(SearchIndex, "build", classmethod(lambda cls, *a, **k: pytest.fail("rebuilt")))
    kept = SearchIndex.open(_with_counts(stored, None))  # no counts in meta: count(*) it is
    assert len(kept) == n + 4 and first(kept, "jonh smtih") == "p-jsmith"
    # Read an array at a time straight from the blob: the same as the whole value, parsed.
    conn = _with_counts(stored, None)
    header, arrays, text = index_module._stored_parts(conn)
    whole = SearchIndex.from_bytes(conn, conn.execute("SELECT data FROM search_index").fetchone()[0])
    assert text.split("\n") == whole.vocabulary.terms and header["n_listings"] == n
    assert sorted(arrays) == sorted(whole._arrays)
    for name, array in arrays.items():
        assert array.dtype == whole._arrays[name].dtype and np.array_equal(array, whole._arrays[name]), name
    wrong = _with_counts(stored, {"listings": n + 1})
    with pytest.raises(ValueError, match="row counts"):
        SearchIndex._from_parts(wrong, *index_module._stored_parts(wrong))


def test_serialised_index_answers_the_same(search_index, directory):
    loaded = SearchIndex.from_bytes(directory, search_index.to_bytes())
    for q in ["jonh smtih", "cards", "4471", "dept:radiology", '"john smith"', "s"]:
        assert [(h.id, round(h.score, 5)) for h in loaded.search(q)] == \
               [(h.id, round(h.score, 5)) for h in search_index.search(q)]


def test_empty_directory(directory_records):
    build_directory, LISTINGS = directory_records["build"], directory_records["listings"]
    conn = open_database(build_directory(listings=[LISTINGS[0]], contacts=[], schedules=[], shifts=[]))
    index = SearchIndex.build(conn)
    assert ids(index.search("smith")) == ["p-jsmith"]
    assert index.search("4471") == []
    assert index.reverse_lookup("608 555 4471") == []


def test_rows_in_any_rowid_order(directory_records):
    build_directory, LISTINGS = directory_records["build"], directory_records["listings"]
    """The bulk reads must keep rows aligned even when rowids are not 1..n."""
    shuffled = list(reversed(LISTINGS))
    conn = open_database(build_directory(listings=shuffled))
    index = SearchIndex.build(conn)
    assert first(index, "jonh smtih") == "p-jsmith"
    assert first(index, "4471") == "p-jsmith"
    assert first(index, "cards") == "d-card"


def test_values_with_line_breaks_and_nulls(directory_db):
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.deserialize(directory_db)
    conn.execute("UPDATE listings SET title = 'Attending\nPhysician', building = NULL WHERE id = 'p-jsmith'")
    conn.commit()
    index = SearchIndex.build(conn)
    assert first(index, "smith attending") == "p-jsmith"
    assert first(index, "jonh smtih") == "p-jsmith"


# ------------------------------------------------------------------------------------------ synonyms


def test_shipped_synonyms_load():
    synonyms = load_synonyms()
    assert ("cardiology",) in synonyms.expand["cards"]
    assert ("emergency", "department") in synonyms.expand["er"]
    assert ("emergency", "department") in synonyms.expand["ae"]   # written "a&e" in the file
    assert ("paediatrics",) in synonyms.expand["pediatrics"]


def test_custom_synonyms(directory):
    index = SearchIndex.build(directory, synonyms=Synonyms.from_mapping({"expand": {"ticker": ["cardiology"]}}))
    assert first(index, "ticker") == "d-card"
    assert "d-ed" not in ids(index.search("ER"))  # the shipped synonyms are not in play


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_text(directory):
    out = io.StringIO()
    assert run_search_cli(directory, "jonh smtih", limit=3, as_json=False, out=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "Smith, John" in lines[0] and "[p-jsmith]" in lines[0]


def test_cli_json(directory):
    out = io.StringIO()
    assert run_search_cli(directory, "4471", limit=5, as_json=True, out=out) == 0
    doc = json.loads(out.getvalue())
    top = doc["results"][0]
    assert doc["query"] == "4471" and top["rank"] == 1 and top["id"] == "p-jsmith"
    assert {"field": "extension", "text": "4471", "spans": [[0, 4]]} in top["matched"]
    assert isinstance(top["score"], float)


def test_cli_reads_queries_from_stdin(directory):
    out = io.StringIO()
    roster = io.StringIO("john smith\n\ncards\nzzzzqqq\n")
    assert run_search_cli(directory, "-", limit=1, as_json=True, out=out, inp=roster) == 1  # one found nothing
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["query"] for d in docs] == ["john smith", "cards", "zzzzqqq"]
    assert [d["results"][0]["id"] if d["results"] else None for d in docs] == ["p-jsmith", "d-card", None]


def test_cli_text_blocks_for_stdin(directory):
    out = io.StringIO()
    run_search_cli(directory, "-", limit=2, as_json=False, out=out, inp=io.StringIO("peds\nzzzzqqq\n"))
    text = out.getvalue()
    assert text.startswith("# peds\n") and "# zzzzqqq\n  (nothing found)" in text


def test_top_is_the_full_sort_cut_short_with_ties_and_negative_scores():
    """``top`` selects before it sorts; what it returns is the first ``limit`` of a full sort by score, then
    tie key (a one-letter query scores most rows alike: ties at the cut are the common case)."""
    import numpy as np

    from backup_operator.core.search.scoring import top

    rng = np.random.default_rng(5)
    for values in (rng.integers(-3, 4, 5000), rng.random(5000) - 0.5, np.ones(5000), np.arange(30)):
        scores = values.astype(np.float32)
        rows = rng.permutation(len(scores) * 2)[:len(scores)]
        tie_key = rng.permutation(len(scores) * 2).astype(np.int64)
        for limit in (1, 51, len(scores) - 1):
            got_rows, got_scores = top(rows, scores, limit, tie_key)
            order = np.lexsort((tie_key[rows], -scores))[:limit]
            assert got_rows.tolist() == rows[order].tolist()
            assert got_scores.tolist() == scores[order].tolist()
