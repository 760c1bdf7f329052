"""Directory search: typo-tolerant, word-order-free, by name, department, title, place, alias and number.

An operator types while a caller waits, so the index is built (or loaded) once per snapshot and every
keystroke is answered from memory in about a millisecond. Python API::

    index = SearchIndex.open(conn)            # load the snapshot's prebuilt index, or build one
    hits = index.search("jonh smtih", limit=50)
    hits[0].kind, hits[0].id, hits[0].name, hits[0].score
    hits[0].matches                           # (FieldMatch(field, text, spans), ...) for highlighting
    index.reverse_lookup("+1 (608) 555-4471") # who owns the number on the caller ID

Query language (what an operator may type):

- words in any order, partial ("smi joh") or misspelled ("jonh smtih", "cardiolgy");
- numbers with any punctuation: "4471" finds extension 4471 and 608-555-4471 (a number matches whole,
  as its ending, or as its beginning, never in the middle);
- synonyms from ``resources/synonyms.toml`` ("cards", "ER", "peds");
- field prefixes, which also make the word required: ``name:`` ``first:`` ``last:`` ``alias:`` ``kw:``
  ``title:`` ``dept:`` ``site:`` ``building:`` ``floor:`` ``room:`` ``loc:`` (site, building, floor or
  room), ``ext:`` ``phone:`` ``mobile:`` ``pager:`` ``fax:`` ``num:``, and ``kind:`` (person,
  department, location, service, schedule);
- quotes for exact mode: ``"smith"`` matches the word smith only (not Smithson, not Smyth);
  ``"john smith"`` needs those words next to each other in one field; ``"4471"`` needs that exact number.
  An unclosed quote (still typing) counts as closed.

The package, one role per module (see ``docs/DESIGN.md`` for the long version):

- ``text``        normalising text: folding and word splitting, one rule for index, queries and highlights;
- ``fields``      what is searchable: fields and their weights, listing kinds, number kinds;
- ``query``       reading the query language into one part per word;
- ``synonyms``    the operators' synonyms file;
- ``build``       building the index's flat arrays from a snapshot's rows;
- ``candidates``  which vocabulary words a typed word may stand for, each with a quality;
- ``scoring``     from matched words to one score per row, and the best rows;
- ``numbers``     digits: whole numbers, their beginnings and endings, caller IDs;
- ``results``     hits, their details and highlighting;
- ``index``       ``SearchIndex``: opening (stored or built), storing, and answering;
- ``cli``         printing results for ``backup-operator search``;
- ``arrays``      numpy helpers shared by the others.

Per keystroke the work is proportional to the rows the query words match; nothing grows with the
number of queries asked. The package must never import Qt or cryptography, never write the directory
anywhere, and never use the process's local time zone.
"""

from backup_operator.core.search.cli import run_search_cli
from backup_operator.core.search.index import INDEX_FORMAT, SearchIndex, store_index
from backup_operator.core.search.results import FieldMatch, Hit
from backup_operator.core.search.synonyms import Synonyms, default_synonyms_path, load_synonyms

__all__ = [
    "SearchIndex",
    "Hit",
    "FieldMatch",
    "Synonyms",
    "load_synonyms",
    "default_synonyms_path",
    "run_search_cli",
    "store_index",
    "INDEX_FORMAT",
]
