"""Updating a snapshot's stored search index for a delta, instead of building it again from every row.

A delta changes a few listings; building the index of a million listings again costs seconds. So the
index the base snapshot carries (the exporter's, stored in ``search_index``) is updated: the rows the
chain touched (listings and schedules it deletes or upserts, listings whose numbers it adds or removes)
are taken out of every posting list, the same rows as they are now are indexed on their own with the
build's own code (``build_arrays`` on a small database holding just them), and the two are merged.

The result answers every query exactly as a full build of the same database would: the same words
with the same rows and fields, the same phrases (a distinct value of a column, known by its field and
its set of words: two values with the same words are one phrase here, which scores every row the same),
the same per-row arrays, the same name order, the same numbers and the same word frequencies. Word and
phrase ids may differ (a full build's are in an order of its own); nothing searched depends on them.
tests/core/test_search_update.py checks this against a full build on directories with adds, removals,
renames and number changes.

Anything unusual gives ``None`` and the caller builds the index as before: no stored index of this
format, a schema it does not know, more than ``MAX_CHANGED_SHARE`` of the rows touched, or rows that do
not line up. Run only on a chain whose rows the caller then checks against the signed content hash.
"""

from __future__ import annotations

import logging
import sqlite3

import numpy as np

from backup_operator.core.search.build import build_arrays, fetch_columns
from backup_operator.core.search.candidates import VOCABULARY_ARRAYS, df_prior_of, vocabulary_arrays
from backup_operator.core.search.phonetic import phonetic_arrays
from backup_operator.core.search.index import SearchIndex, _stored_index
from backup_operator.core.search.synonyms import default_synonyms

__all__ = ["IndexUpdate", "MAX_CHANGED_SHARE"]

log = logging.getLogger(__name__)

#: Above this share of rows touched, a full build is about as quick and simpler: build.
MAX_CHANGED_SHARE = 0.2
_BATCH = 500
_NAME = "replace(ifnull(CAST({} AS TEXT), ''), char(10), ' ')"  # what fetch_columns reads, in any case


def _in_batches(conn: sqlite3.Connection, sql: str, values: list) -> list[tuple]:
    """``sql`` with ``{}`` replaced by a list of marks, run for ``values`` a batch at a time."""
    out: list[tuple] = []
    for start in range(0, len(values), _BATCH):
        batch = values[start:start + _BATCH]
        out.extend(conn.execute(sql.format(",".join("?" * len(batch))), batch).fetchall())
    return out


def _rowids(conn: sqlite3.Connection, table: str) -> np.ndarray:
    """Every rowid of ``table``, ascending (a scan of the table itself, as build.fetch_columns reads)."""
    text = conn.execute(f"SELECT group_concat(rowid) FROM {table} NOT INDEXED").fetchone()[0]
    return np.fromstring(text, dtype=np.int64, sep=",") if text else np.empty(0, np.int64)


def _positions(sorted_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each of ``wanted`` is in ``sorted_ids`` (-1 where it is not)."""
    if not len(sorted_ids):
        return np.full(len(wanted), -1, np.int64)
    pos = np.searchsorted(sorted_ids, wanted)
    clipped = np.minimum(pos, len(sorted_ids) - 1)
    return np.where(sorted_ids[clipped] == wanted, clipped, -1).astype(np.int64)


def _merge(keys: np.ndarray, cols: list[np.ndarray], new_keys: np.ndarray, new_cols: list[np.ndarray]):
    """Entries sorted by key, with new entries added: (keys, cols), still sorted by key (stable)."""
    order = np.argsort(new_keys, kind="stable")
    new_keys = new_keys[order]
    new_cols = [c[order] for c in new_cols]
    if len(keys) > 1 and not bool(np.all(keys[1:] >= keys[:-1])):
        every = np.argsort(np.concatenate([keys, new_keys]), kind="stable")
        return (np.concatenate([keys, new_keys])[every],
                [np.concatenate([c, n])[every] for c, n in zip(cols, new_cols)])
    at = np.searchsorted(keys, new_keys, side="right")
    return np.insert(keys, at, new_keys), [np.insert(c, at, n) for c, n in zip(cols, new_cols)]


def _expand(off: np.ndarray) -> np.ndarray:
    """The key of every entry of a CSR layout with offsets ``off``."""
    return np.repeat(np.arange(len(off) - 1, dtype=np.int64), np.diff(off))


def _offsets(sorted_keys: np.ndarray, n_keys: int) -> np.ndarray:
    off = np.zeros(n_keys + 1, dtype=np.int64)
    if len(sorted_keys):
        np.cumsum(np.bincount(sorted_keys, minlength=n_keys), out=off[1:])
    return off


class IndexUpdate:
    """The stored index of a chain's base, and what the chain touches; ``finish`` makes the new index."""

    def __init__(self, old: SearchIndex, listing_ids: set, schedule_ids: set, old_rows: list[int]):
        self.old = old
        self.listing_ids = listing_ids      # listings the chain deletes or upserts
        self.schedule_ids = schedule_ids
        self.number_ids: set = set()        # listings whose numbers the chain adds or removes
        self.old_rows = old_rows            # rows of the base index that are touched (known so far)
        self.failed = False

    @classmethod
    def prepare(cls, conn: sqlite3.Connection, deltas) -> "IndexUpdate | None":
        """Before the chain is applied to ``conn`` (the base database): its stored index and the rows
        the chain's keyed tables touch. ``None`` when the index must be built instead."""
        listing_ids: set = set()
        schedule_ids: set = set()
        for delta in deltas:
            for table in delta.tables:
                target = {"listings": listing_ids, "oncall_schedules": schedule_ids}.get(table.name)
                if target is None:
                    continue
                if table.mode != "keyed" or table.key != ("id",):
                    return None
                at = table.columns.index("id")
                target.update(k[0] for k in table.delete)
                target.update(r[at] for r in table.upsert)
        try:
            data = _stored_index(conn)
            if data is None:
                return None
            old = SearchIndex.from_bytes(conn, data, synonyms=default_synonyms())
        except (sqlite3.DatabaseError, ValueError) as exc:
            log.info("the base's stored search index cannot be updated (%s); building", exc)
            return None
        if len(listing_ids) + len(schedule_ids) > MAX_CHANGED_SHARE * max(len(old), 1):
            return None
        update = cls(old, listing_ids, schedule_ids, [])
        n_l = old.n_listings
        for table, ids, first, last in (("listings", listing_ids, 0, n_l),
                                         ("oncall_schedules", schedule_ids, n_l, len(old))):
            found = _in_batches(conn, f"SELECT rowid FROM {table} WHERE id IN ({{}})", sorted(ids, key=str))
            pos = _positions(old.rowid[first:last], np.array([r[0] for r in found], dtype=np.int64))
            if (pos < 0).any():
                return None
            update.old_rows.extend((pos + first).tolist())
        return update

    def renumbered(self, conn: sqlite3.Connection, shape, gone: list[int], added: list[tuple]) -> None:
        """``apply_chain``'s hook: the listings whose numbers (contact methods) the chain changes."""
        if shape.name != "contact_methods":
            return
        if "listing_id" not in shape.columns:
            self.failed = True
            return
        at = shape.columns.index("listing_id")
        self.number_ids.update(row[at] for row in added)
        self.number_ids.update(r[0] for r in _in_batches(
            conn, "SELECT DISTINCT listing_id FROM main.contact_methods WHERE id IN ({})", gone))

    def finish(self, conn: sqlite3.Connection) -> SearchIndex | None:
        """The index of the chain's result, open on ``conn`` (after the chain, its content checked)."""
        if self.failed:
            return None
        old = self.old
        A = old._arrays
        n_l_old = old.n_listings
        new_l, new_s = _rowids(conn, "listings"), _rowids(conn, "oncall_schedules")
        n_l, n = len(new_l), len(new_l) + len(new_s)

        # listings touched only through their numbers keep their row: the same rowid before and after
        only_numbers = sorted(self.number_ids - self.listing_ids, key=str)
        found = _in_batches(conn, "SELECT rowid FROM listings WHERE id IN ({})", only_numbers)
        pos = _positions(old.rowid[:n_l_old], np.array([r[0] for r in found], dtype=np.int64))
        if (pos < 0).any():
            return None
        old_touched = np.array(self.old_rows + pos.tolist(), dtype=np.int64)

        # old row -> new row, for the rows the chain did not touch
        row_map = np.concatenate([_positions(new_l, old.rowid[:n_l_old]),
                                  np.where(_positions(new_s, old.rowid[n_l_old:]) >= 0,
                                           _positions(new_s, old.rowid[n_l_old:]) + n_l, -1)])
        row_map[old_touched] = -1
        kept = np.flatnonzero(row_map >= 0)
        if len(kept) + len(old_touched) != len(old) or len(np.unique(old_touched)) != len(old_touched):
            return None  # a row the chain did not touch is gone: not what the deltas say

        # the touched rows as they are now, indexed on their own
        small, small_n_l = self._small_database(conn, sorted(self.listing_ids | self.number_ids, key=str))
        try:
            S, s_terms, s_n_l = build_arrays(small)
            (s_names,), _ = fetch_columns(small, "listings", ["display_name"])
            (s_sched,), _ = fetch_columns(small, "oncall_schedules", ["name"])
        finally:
            small.close()
        if s_n_l != small_n_l:
            return None
        s_map = np.concatenate([_positions(new_l, S["rowid"][:s_n_l]),
                                np.where(_positions(new_s, S["rowid"][s_n_l:]) >= 0,
                                         _positions(new_s, S["rowid"][s_n_l:]) + n_l, -1)])
        if (s_map < 0).any():
            return None
        covered = np.zeros(n, dtype=bool)
        covered[row_map[kept]] = True
        if covered[s_map].any() or len(kept) + len(s_map) != n:
            return None
        if len(old_touched) + len(s_map) > MAX_CHANGED_SHARE * max(n, 1):
            return None

        # per-row arrays
        rowid = np.concatenate([new_l, new_s])
        kind = np.empty(n, dtype=A["kind"].dtype)
        name_len = np.empty(n, dtype=A["name_len"].dtype)
        for arr, name in ((kind, "kind"), (name_len, "name_len")):
            arr[row_map[kept]] = A[name][kept]
            arr[s_map] = S[name]

        # vocabulary: the old words, then the touched rows' new ones
        terms = list(old.vocabulary.terms)
        ids = old.vocabulary.ids
        extra: dict[str, int] = {}
        s_term_ids = np.empty(len(s_terms), dtype=np.int64)
        for i, term in enumerate(s_terms):
            got = ids.get(term)
            if got is None:
                got = extra.get(term)
                if got is None:
                    got = extra[term] = len(terms)
                    terms.append(term)
            s_term_ids[i] = got

        # name postings (word, row, field), sorted by word then row
        rt_term = _expand(A["rt_off"])
        rt_rows = row_map[A["rt_rows"]]
        keep = rt_rows >= 0
        rt_key, (rt_rows, rt_field) = _merge(
            rt_term[keep] * n + rt_rows[keep], [rt_rows[keep], A["rt_field"][keep]],
            s_term_ids[_expand(S["rt_off"])] * n + s_map[S["rt_rows"]], [s_map[S["rt_rows"]], S["rt_field"]])
        rt_term = rt_key // n

        # phrases: an old one with the same field and words, else a new one
        phrase_field = list(A["phrase_field"].tolist())
        phrase_of = self._phrase_keys(A, old.vocabulary.terms)
        pt_new_term: list[int] = []
        pt_new_phr: list[int] = []
        s_pt_term = _expand(S["pt_off"])
        s_pt_order = np.argsort(S["pt_phr"], kind="stable")
        s_words: dict[int, list[str]] = {}
        for phr, term in zip(S["pt_phr"][s_pt_order].tolist(), s_pt_term[s_pt_order].tolist()):
            s_words.setdefault(phr, []).append(s_terms[term])
        s_sizes = np.diff(S["pr_off"])
        s_phr_ids = np.full(len(S["phrase_field"]), -1, dtype=np.int64)
        for j, field in enumerate(S["phrase_field"].tolist()):
            if not s_sizes[j] or j not in s_words:
                continue
            key = (field, tuple(sorted(s_words[j])))
            got = phrase_of.get(key)
            if got is None:
                got = phrase_of[key] = len(phrase_field)
                phrase_field.append(field)
                for word in key[1]:
                    pt_new_term.append(ids[word] if word in ids else extra[word])
                    pt_new_phr.append(got)
            s_phr_ids[j] = got
        P = len(phrase_field)
        pr_phr = _expand(A["pr_off"])
        pr_rows = row_map[A["pr_rows"]]
        keep = pr_rows >= 0
        s_pr_phr = s_phr_ids[_expand(S["pr_off"])]
        s_pr_rows = s_map[S["pr_rows"]]
        if (s_pr_phr < 0).any():
            return None
        pr_key, (pr_rows,) = _merge(pr_phr[keep] * n + pr_rows[keep], [pr_rows[keep]],
                                    s_pr_phr * n + s_pr_rows, [s_pr_rows])
        pr_phr = pr_key // n
        phrase_size = np.bincount(pr_phr, minlength=P)
        pt_term = np.concatenate([_expand(A["pt_off"]), np.array(pt_new_term, dtype=np.int64)])
        pt_phr = np.concatenate([A["pt_phr"].astype(np.int64), np.array(pt_new_phr, dtype=np.int64)])

        # drop phrases left without rows and words left without rows (a full build has neither)
        live_p = phrase_size > 0
        keep = live_p[pt_phr]
        pt_term, pt_phr = pt_term[keep], pt_phr[keep]
        V = len(terms)
        df = np.bincount(rt_term, minlength=V).astype(np.float64)
        if len(pt_term):
            df += np.bincount(pt_term, weights=phrase_size[pt_phr].astype(np.float64), minlength=V)
        live_t = df > 0
        if "\x01" in ids:  # build.bulk_words' row marker: a full build keeps it in the vocabulary, unused
            live_t[ids["\x01"]] = True
        if not live_p.all():
            p_map = np.cumsum(live_p) - 1
            pr_phr, pt_phr = p_map[pr_phr], p_map[pt_phr]
            phrase_field = np.array(phrase_field, dtype=np.uint8)[live_p]
            P = int(live_p.sum())
        else:
            phrase_field = np.array(phrase_field, dtype=np.uint8)
        same_vocabulary = bool(live_t.all()) and not extra
        if not live_t.all():
            t_map = np.cumsum(live_t) - 1
            rt_term, pt_term = t_map[rt_term], t_map[pt_term]
            terms = [t for t, live in zip(terms, live_t.tolist()) if live]
            df = df[live_t]
            V = len(terms)
        order = np.lexsort((pt_phr, pt_term))
        pt_term, pt_phr = pt_term[order], pt_phr[order]

        if same_vocabulary:
            vocab = {name: A[name].copy() for name in VOCABULARY_ARRAYS}  # not views of the old index
            vocab["df_prior"] = df_prior_of(df)
        else:
            # the sound-alike keys of the words kept are the old ones (ids renumbered; the order, by key
            # then word, stays); only the new words' are worked out
            V0 = len(old.vocabulary.terms)
            t_map = np.cumsum(live_t) - 1
            keep = live_t[A["ph_terms"]]
            ph_keys, ph_terms = A["ph_keys"][keep], t_map[A["ph_terms"][keep]]
            fresh = phonetic_arrays([terms[i] for i in range(int(live_t[:V0].sum()), V)])
            ph_keys, (ph_terms,) = _merge(ph_keys, [ph_terms], fresh["ph_keys"],
                                          [fresh["ph_terms"].astype(np.int64) + int(live_t[:V0].sum())])
            vocab = vocabulary_arrays(terms, df, phonetic=dict(ph_keys=ph_keys, ph_terms=ph_terms.astype(np.int32)))

        arrays = dict(kind=kind, rowid=rowid, name_len=name_len,
                      name_rank=self._name_rank(conn, A["name_rank"], row_map, s_map, s_names + s_sched,
                                                new_l, new_s),
                      rt_off=_offsets(rt_term, V), rt_rows=rt_rows.astype(np.int32), rt_field=rt_field,
                      pt_off=_offsets(pt_term, V), pt_phr=pt_phr.astype(np.int32), phrase_field=phrase_field,
                      pr_off=_offsets(pr_phr, P), pr_rows=pr_rows.astype(np.int32), **vocab)
        for way in ("fwd", "rev"):
            rows = row_map[A[f"num_{way}_row"]]
            keep = rows >= 0
            key, (rows, kinds) = _merge(A[f"num_{way}"][keep], [rows[keep], A[f"num_{way}_kind"][keep]],
                                        S[f"num_{way}"], [s_map[S[f"num_{way}_row"]], S[f"num_{way}_kind"]])
            arrays[f"num_{way}"], arrays[f"num_{way}_row"], arrays[f"num_{way}_kind"] = \
                key, rows.astype(np.int32), kinds
        return SearchIndex(conn, arrays, terms, default_synonyms(), n_l)

    # ------------------------------------------------------------------------------------------ parts

    def _small_database(self, conn: sqlite3.Connection, listing_ids: list) -> tuple[sqlite3.Connection, int]:
        """An in-memory database of the indexed tables holding only the touched rows, as they are now
        (same rowids, so the same order)."""
        small = sqlite3.connect(":memory:")
        for table in ("listings", "contact_methods", "oncall_schedules"):
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
            small.execute(sql[0])
        count = 0
        for table, key, ids in (("listings", "id", listing_ids),
                                ("contact_methods", "listing_id", listing_ids),
                                ("oncall_schedules", "id", sorted(self.schedule_ids, key=str))):
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            rows = _in_batches(conn, f"SELECT rowid, * FROM main.{table} WHERE {key} IN ({{}})", ids)
            small.executemany(f"INSERT INTO {table} (rowid, {', '.join(cols)}) VALUES "
                              f"({', '.join('?' * (len(cols) + 1))})", rows)
            if table == "listings":
                count = len(rows)
        small.commit()
        return small, count

    @staticmethod
    def _phrase_keys(A: dict[str, np.ndarray], terms: list[str]) -> dict[tuple, int]:
        """(field, sorted words) -> phrase id, for the old index's phrases that have rows."""
        sizes = np.diff(A["pr_off"])
        pt_term = _expand(A["pt_off"])
        order = np.argsort(A["pt_phr"], kind="stable")
        words: dict[int, list[str]] = {}
        for phr, term in zip(A["pt_phr"][order].tolist(), pt_term[order].tolist()):
            words.setdefault(phr, []).append(terms[term])
        fields = A["phrase_field"].tolist()
        out: dict[tuple, int] = {}
        for phr, ws in words.items():
            if sizes[phr]:
                out.setdefault((fields[phr], tuple(sorted(ws))), phr)
        return out

    @staticmethod
    def _name_rank(conn: sqlite3.Connection, old_rank: np.ndarray, row_map: np.ndarray, s_map: np.ndarray,
                   s_names: list[str], new_l: np.ndarray, new_s: np.ndarray) -> np.ndarray:
        """Each row's place in name order (case-folded name, then row), as build._name_rank gives: the
        untouched rows keep their order; each touched row is put in its place by binary search."""
        n = len(new_l) + len(new_s)
        seq = row_map[np.argsort(old_rank, kind="stable")]
        seq = seq[seq >= 0]
        listing_sql = f"SELECT {_NAME.format('display_name')} FROM listings WHERE rowid = ?"
        schedule_sql = f"SELECT {_NAME.format('name')} FROM oncall_schedules WHERE rowid = ?"

        def key_of(row: int) -> tuple[str, int]:
            if row < len(new_l):
                name = conn.execute(listing_sql, (int(new_l[row]),)).fetchone()[0]
            else:
                name = conn.execute(schedule_sql, (int(new_s[row - len(new_l)]),)).fetchone()[0]
            return name.casefold(), row

        touched = sorted((name.casefold(), int(row)) for name, row in zip(s_names, s_map.tolist()))
        places = []
        lo = 0
        for key in touched:
            hi = len(seq)
            while lo < hi:
                mid = (lo + hi) // 2
                if key_of(int(seq[mid])) < key:
                    lo = mid + 1
                else:
                    hi = mid
            places.append(lo)
        order = np.insert(seq, np.array(places, dtype=np.int64), np.array([r for _k, r in touched], dtype=seq.dtype))
        rank = np.empty(n, dtype=old_rank.dtype)
        rank[order] = np.arange(n, dtype=old_rank.dtype)
        return rank
