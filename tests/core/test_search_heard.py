"""Search for names as they are heard on the phone: nicknames, sound-alikes, slips at the start of a
word, short words, two slips in a mid-length word, and ranking by rarity with deterministic ties.

A directory of its own (``heard_index``): a few people to find, and enough common given names and
surnames around them that rarity means something.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from backup_operator.core.model import build_database, open_database
from backup_operator.core.search import SearchIndex, store_index
from backup_operator.core.search.nicknames import Nicknames, load_nicknames
from backup_operator.core.search.phonetic import word_keys

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=timezone.utc)


def person(lid, family, given, display=None, aliases=()):
    return {"id": lid, "kind": "person", "display_name": display or f"{family}, {given}", "family_name": family,
            "given_name": given, "title": "Registered Nurse", "department": "Radiology",
            "site": "Riverside Hospital", "aliases": list(aliases)}


TARGETS = [
    person("p-rsmith", "Smith", "Robert"),
    person("p-kbrown", "Brown", "Kathryn"),
    person("p-sclark", "Clark", "Steven"),
    person("p-amcdonald", "McDonald", "Angus"),
    person("p-lwalsh", "Walsh", "Liam"),
    person("p-jokafor", "Okafor", "Jacob"),
    person("p-jthorpe", "Thorpe", "Jeremy"),
    person("p-jrossi", "Rossi", "Jessica"),
    person("p-zli", "Li", "Zoe"),
    person("p-mma", "Ma", "Mya"),
    person("p-bshepherd", "Shepherd", "Bradley"),
    person("p-gsribar", "Sribar", "Giaan"),
    person("p-bob", "Quinlan", "Bob"),
    person("p-cjohnsen", "Johnsen", "Carl"),
    person("p-sphilips", "Philips", "Sean"),
    person("p-nguyen", "Nguyen", "Nguyen", display="Nguyen"),
    person("p-tnguyen", "Nguyen", "Thi Lan", display="Nguyen Thi Lan"),
]
# Decoys: for each person to find, others with the same surname and others with the same given name, so
# that every word of a query has to be matched as intended (not just the one that is spelt right).
# Their names sort first, and they come first in the directory, so that no tie ever favours a target.
_DECOY_GIVEN = ["Abel", "Adele", "Agnes"]
_DECOY_FAMILY = ["Abbott", "Acheson", "Ainsley"]
_SPECIAL = {"p-gsribar", "p-bshepherd", "p-nguyen", "p-tnguyen", "p-anna-a", "p-anna-b"}
DECOYS = [person(f"{t['id']}-g{i}", t["family_name"], g) for t in TARGETS if t["id"] not in _SPECIAL
          for i, g in enumerate(_DECOY_GIVEN)]
DECOYS += [person(f"{t['id']}-f{i}", f, t["given_name"]) for t in TARGETS if t["id"] not in _SPECIAL
           for i, f in enumerate(_DECOY_FAMILY)]
# the crowd: common given names and surnames, so that a rare word is rare
_GIVEN = ["Bradley", "John", "Mary", "David", "Susan", "Peter", "Linda", "Paul", "Karen", "Mark"]
_FAMILY = ["Jones", "Taylor", "Wilson", "Evans", "Walker", "Wright", "Green", "Hall", "Wood", "Harris",
           "Martin", "Cooper", "King", "Baker", "Lewis", "Young", "Hill", "Scott", "Adams", "Moore"]
CROWD = [person(f"c-{i}", _FAMILY[i % len(_FAMILY)], _GIVEN[(i * 7) % len(_GIVEN)]) for i in range(200)]


@pytest.fixture(scope="module")
def heard_db() -> bytes:
    return build_database(listings=DECOYS + TARGETS + CROWD, contact_methods=[], schedules=[], shifts=[],
                          snapshot_version=1, created_at=NOW, expires_at=NOW + timedelta(days=2),
                          expected_interval_s=3600, source="tests/core/test_search_heard.py")


@pytest.fixture(scope="module")
def heard_index(heard_db):
    conn = open_database(heard_db)
    yield SearchIndex.build(conn)
    conn.close()


def ids(hits):
    return [h.id for h in hits]


def first(index, query):
    hits = index.search(query)
    assert hits, f"nothing found for {query!r}"
    return hits[0].id


# ------------------------------------------------------------------------------------------ nicknames


@pytest.mark.parametrize("query,expected", [
    ("bob smith", "p-rsmith"), ("smith, bob", "p-rsmith"), ("rob smith", "p-rsmith"), ("bobby smith", "p-rsmith"),
    ("kate brown", "p-kbrown"), ("katie brown", "p-kbrown"), ("steve clark", "p-sclark"),
    ("robert quinlan", "p-bob"), ("jake okafor", "p-jokafor"),
])
def test_nicknames_find_the_given_name_both_ways(heard_index, query, expected):
    assert first(heard_index, query) == expected


def test_a_nickname_ranks_below_the_exact_name(heard_index):
    # "bob" is the given name of Bob Quinlan (and his decoys) exactly, and Robert Smith's by nickname
    hits = heard_index.search("bob")
    bobs = [i for i, h in enumerate(hits) if h.name.endswith(", Bob")]
    roberts = [i for i, h in enumerate(hits) if h.name.endswith(", Robert")]
    assert bobs and roberts and max(bobs) < min(roberts)
    assert hits[max(bobs)].score > hits[min(roberts)].score


def test_nicknames_apply_to_given_names_only(heard_index):
    # "bob" is not a surname: no one's family name "Robert" should be found by it
    hits = heard_index.search("last:bob")
    assert hits == []


def test_nickname_highlights_the_name_it_stands_for(heard_index):
    hit = heard_index.search("bob smith")[0]
    name = next(m for m in hit.matches if m.field == "name")
    assert [name.text[a:b] for a, b in name.spans] == ["Smith", "Robert"]


def test_the_shipped_table_is_read_and_works_both_ways():
    table = load_nicknames()
    assert "robert" in table.of("bob") and "bob" in table.of("robert")
    assert "william" in table.of("bill") and "elizabeth" in table.of("liz")
    assert table.of("zzzz") == ()


def test_a_custom_table(heard_db):
    conn = open_database(heard_db)
    index = SearchIndex(conn, *_arrays(conn), nicknames=Nicknames.from_pairs([("angus", "gus")]))
    assert first(index, "gus mcdonald") == "p-amcdonald"
    assert "p-rsmith" not in ids(index.search("bob"))  # this table knows no Bob


def _arrays(conn):
    from backup_operator.core.search.build import build_arrays
    from backup_operator.core.search.synonyms import default_synonyms

    arrays, terms, n_listings = build_arrays(conn)
    return arrays, terms, default_synonyms(), n_listings


# ------------------------------------------------------------------------------------------ sound-alikes


@pytest.mark.parametrize("query,expected", [
    ("katherine brown", "p-kbrown"), ("catherine brown", "p-kbrown"), ("stephen clark", "p-sclark"),
    ("angus macdonald", "p-amcdonald"), ("carl johnson", "p-cjohnsen"), ("shaun philips", "p-sphilips"),
    ("sean phillips", "p-sphilips"), ("sean filips", "p-sphilips"), ("steven klark", "p-sclark"),
])
def test_names_spelt_as_heard(heard_index, query, expected):
    assert first(heard_index, query) == expected


@pytest.mark.parametrize("a,b", [("stephen", "steven"), ("katherine", "kathryn"), ("macdonald", "mcdonald"),
                                 ("johnson", "johnsen"), ("katie", "katy"), ("wright", "right"),
                                 ("sean", "shaun"), ("chris", "kris"), ("philips", "filips"), ("smith", "smyth")])
def test_sound_alike_keys_meet(a, b):
    assert set(word_keys(a)) & set(word_keys(b))


@pytest.mark.parametrize("a,b", [("smith", "jones"), ("clark", "clarke" + "son"), ("anna", "emma"),
                                 ("robert", "roberta" + "s")])
def test_different_names_keep_different_keys(a, b):
    assert not set(word_keys(a)) & set(word_keys(b))


def test_short_or_odd_words_have_no_keys():
    assert word_keys("li") == () and word_keys("o'brien") == () and word_keys("4471") == ()


def test_a_half_typed_short_word_needs_a_longer_key():
    # "bria" (on its way to Brian) sounds like Berry by a two-sound key: not used for a typed word
    assert set(word_keys("berry")) & set(word_keys("bria"))
    assert not set(word_keys("berry")) & set(word_keys("bria", typed=True))
    assert set(word_keys("kris")) & set(word_keys("chris", typed=True))


def writable(data: bytes) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.deserialize(data)
    return conn


def test_a_spelling_match_beats_a_sound_alike(heard_index, heard_db):
    # "johnsen" is Carl's surname exactly; a "Johnson" (sound-alike) must come after him
    conn = writable(heard_db)
    conn.execute("INSERT INTO listings (id, kind, display_name, family_name, given_name) "
                 "VALUES ('p-cjohnson', 'person', 'Johnson, Carl', 'Johnson', 'Carl')")
    index = SearchIndex.build(conn)
    assert ids(index.search("carl johnsen"))[:2] == ["p-cjohnsen", "p-cjohnson"]
    assert ids(index.search("carl johnson"))[:2] == ["p-cjohnson", "p-cjohnsen"]


# -------------------------------------------------------------------------- slips at the start of a word


@pytest.mark.parametrize("query,expected", [
    ("ilam walsh", "p-lwalsh"), ("liam awlsh", "p-lwalsh"), ("ajcob okafor", "p-jokafor"),
    ("acob okafor", "p-jokafor"), ("xacob okafor", "p-jokafor"), ("jacob kafor", "p-jokafor"),
    ("jacob pkafor", "p-jokafor"), ("jacob ookafor", "p-jokafor"), ("walsh iam", "p-lwalsh"),
])
def test_a_wrong_missing_or_swapped_first_letter(heard_index, query, expected):
    assert first(heard_index, query) == expected


# --------------------------------------------------------------------------------------- short words


@pytest.mark.parametrize("query,expected", [
    ("ze li", "p-zli"), ("zo li", "p-zli"), ("zoe l", "p-zli"), ("ma mya", "p-mma"), ("my ma", "p-mma"),
    ("mya m", "p-mma"),
])
def test_short_words(heard_index, query, expected):
    assert first(heard_index, query) == expected


# --------------------------------------------------------------------------- two slips in a mid-length word


@pytest.mark.parametrize("query,expected", [("jeremy thropr", "p-jthorpe"), ("jessxia rossi", "p-jrossi"),
                                            ("thropr jeremy", "p-jthorpe")])
def test_two_slips_in_a_five_to_seven_letter_word(heard_index, query, expected):
    assert first(heard_index, query) == expected


def test_two_slips_are_not_tried_when_one_will_do(heard_index):
    # "walkr" is one slip from Walker (in the crowd): two-slip guesses must not join in
    hits = heard_index.search("walkr")
    assert hits and all("Walker" in h.name for h in hits)


# ----------------------------------------------------------------------------------------------- ranking


def test_a_rare_surname_outweighs_a_common_given_name(heard_index):
    # many Bradleys; one Sribar. Giaan Sribar matched the rare word, Bradley Shepherd only the common one
    hits = ids(heard_index.search("bradley sribar"))
    assert hits[0] == "p-gsribar"
    assert hits.index("p-gsribar") < hits.index("p-bshepherd")


def test_whole_name_bonus_only_when_every_word_matched(heard_index):
    # "qqqq" matches nothing: neither "Nguyen" (one word, wholly covered) nor "Nguyen Thi Lan" gets the
    # whole-name bonus, so the one-word name does not outscore the other through it
    by_id = {h.id: h.score for h in heard_index.search("nguyen qqqq")}
    assert by_id["p-nguyen"] == pytest.approx(by_id["p-tnguyen"], abs=0.01)
    # every word matched: the bonus is back, and the whole name wins
    by_id = {h.id: h.score for h in heard_index.search("nguyen")}
    assert by_id["p-nguyen"] > by_id["p-tnguyen"]
    assert first(heard_index, "nguyen thi") == "p-tnguyen"


def _directory(listings) -> bytes:
    return build_database(listings=listings, contact_methods=[], schedules=[], shifts=[], snapshot_version=1,
                          created_at=NOW, expires_at=NOW + timedelta(days=2), expected_interval_s=3600,
                          source="tests/core/test_search_heard.py")


WALKERS = [person("w-1", "Walker", "Zelda"), person("w-2", "Walker", "Martin"), person("w-3", "Walker", "Amir"),
           person("w-4", "Walker", "Quentin"), person("w-5", "Walker", "Beatrice")]


def test_equal_scores_are_listed_by_kind_then_name():
    place = {"id": "d-walker", "kind": "department", "display_name": "Walker Unit", "department": "Walker Unit"}
    index = SearchIndex.build(open_database(_directory(WALKERS + [place])))
    hits = index.search("walker")
    assert len({round(h.score, 6) for h in hits if h.listing_kind == "person"}) == 1
    assert [h.name for h in hits] == ["Walker Unit", "Walker, Amir", "Walker, Beatrice", "Walker, Martin",
                                      "Walker, Quentin", "Walker, Zelda"]


def test_ties_do_not_depend_on_row_order_or_on_storing():
    forward = SearchIndex.build(open_database(_directory(WALKERS)))
    backward = SearchIndex.build(open_database(_directory(list(reversed(WALKERS)))))
    assert ids(forward.search("walker")) == ids(backward.search("walker")) == ["w-3", "w-5", "w-2", "w-4", "w-1"]
    stored = open_database(store_index(_directory(list(reversed(WALKERS)))))
    assert ids(SearchIndex.open(stored).search("walker")) == ["w-3", "w-5", "w-2", "w-4", "w-1"]


# ------------------------------------------------------------------------------------------ stored form


def test_the_stored_index_carries_the_new_sources(heard_db, monkeypatch):
    conn = open_database(store_index(heard_db))
    monkeypatch.setattr(SearchIndex, "build", classmethod(lambda cls, *a, **k: pytest.fail("rebuilt")))
    index = SearchIndex.open(conn)
    for query, expected in [("katherine brown", "p-kbrown"), ("ilam walsh", "p-lwalsh"), ("bob smith", "p-rsmith"),
                            ("jeremy thropr", "p-jthorpe"), ("ze li", "p-zli")]:
        assert first(index, query) == expected


def test_word_order_decides_between_swapped_names():
    # "Scott Thomas" and "Thomas Scott" are different people: the first word typed is the given name,
    # unless a comma says it is the surname
    people = [person("st-1", "Scott", "Thomas"), person("st-2", "Thomas", "Scott")]
    index = SearchIndex.build(open_database(_directory(people)))
    assert first(index, "scott thomas") == "st-2"
    assert first(index, "thomas scott") == "st-1"
    assert first(index, "thomas, scott") == "st-2"
    assert first(index, "scott, thomas") == "st-1"


def test_non_rhotic_endings_sound_alike():
    people = [person("nr-1", "Porter", "David"), person("nr-2", "Parks", "David"), person("nr-3", "Mills", "David")]
    index = SearchIndex.build(open_database(_directory(people)))
    assert first(index, "david porta") == "nr-1"
