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

import json
import logging
import sqlite3

import numpy as np

from backup_operator.core.search.build import build_arrays, fetch_columns
from backup_operator.core.search.candidates import VOCABULARY_ARRAYS, df_prior_of, vocabulary_arrays
from backup_operator.core.search.phonetic import phonetic_arrays
from backup_operator.core.search.index import _ARRAYS, _BLOB_PIECE, INDEX_FORMAT, SearchIndex, _listing_count
from backup_operator.membuf import unfilled
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


def _csr_update(off: np.ndarray, cols: list[np.ndarray], row_map: np.ndarray, n_keys: int,
                new_keys: np.ndarray, new_cols: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """A CSR layout (``off``; ``cols[0]`` the rows, the others beside them) with its rows renumbered by
    ``row_map`` (-1: the entry goes), keys added up to ``n_keys`` (empty), and new entries put in place:
    each where its row belongs among its key's rows. No array of the size of the layout is made but the
    new one and the renumbered rows (at a million listings 8 million entries: a few copies of 33 MB,
    instead of the gigabyte-sized sort keys of a merge)."""
    rows = row_map[cols[0]]
    gone = np.flatnonzero(rows < 0)
    kept = [np.delete(rows, gone)] + [np.delete(c, gone) for c in cols[1:]]
    del rows
    off_f = off - np.searchsorted(gone, off, side="left")
    off_f = np.concatenate([off_f, np.full(n_keys + 1 - len(off), off_f[-1], dtype=off_f.dtype)])
    new_keys = np.asarray(new_keys, dtype=np.int64)
    order = np.lexsort((new_cols[0], new_keys))
    new_keys, new_cols = new_keys[order], [c[order] for c in new_cols]
    at = np.empty(len(new_keys), dtype=np.int64)
    starts = np.flatnonzero(np.diff(new_keys)) + 1 if len(new_keys) else np.empty(0, np.int64)
    for start, end in zip([0, *starts.tolist()], [*starts.tolist(), len(new_keys)]):
        if start == end:
            continue
        a, b = int(off_f[new_keys[start]]), int(off_f[new_keys[start] + 1])
        at[start:end] = a + np.searchsorted(kept[0][a:b], new_cols[0][start:end], side="right")
    out = [np.insert(c, at, n.astype(c.dtype)) for c, n in zip(kept, new_cols)]
    new_off = off_f.astype(np.int64)
    new_off[1:] += np.cumsum(np.bincount(new_keys, minlength=n_keys))
    return new_off, out


def _drop_empty(off: np.ndarray, live: np.ndarray) -> np.ndarray:
    """The offsets of a CSR layout without the keys not ``live`` (whose lists are empty)."""
    return np.append(off[:-1][live], off[-1])


def _expand(off: np.ndarray) -> np.ndarray:
    """The key of every entry of a CSR layout with offsets ``off``."""
    return np.repeat(np.arange(len(off) - 1, dtype=np.int64), np.diff(off))


def _offsets(sorted_keys: np.ndarray, n_keys: int) -> np.ndarray:
    off = np.zeros(n_keys + 1, dtype=np.int64)
    if len(sorted_keys):
        np.cumsum(np.bincount(sorted_keys, minlength=n_keys), out=off[1:])
    return off


class _OldIndex:
    """The base's stored index (``SearchIndex.to_bytes`` in ``search_index``), each array read into memory
    of its own, so that the update frees each as soon as it has used it (one buffer for all of them would
    be held, 150 MB at a million listings, until the end). ``ValueError`` when it is of another format or
    does not fit the rows, as ``SearchIndex.from_bytes`` checks."""

    def __init__(self, conn: sqlite3.Connection):
        row = conn.execute("SELECT rowid FROM search_index WHERE format = ?", (INDEX_FORMAT,)).fetchone()
        if row is None:
            raise ValueError("no stored index of this format")
        try:
            with conn.blobopen("search_index", "data", row[0], readonly=True) as blob:
                size = int.from_bytes(blob.read(8), "little")
                header = json.loads(blob.read(size))
                if header.get("format") != INDEX_FORMAT:
                    raise ValueError(f"index format {header.get('format')!r}")
                self.arrays: dict[str, np.ndarray] = {}
                for name, dtype, shape, offset in header["arrays"]:
                    dt = np.dtype(dtype)
                    nbytes = int(np.prod(shape)) * dt.itemsize
                    blob.seek(8 + size + int(offset))
                    self.arrays[name] = np.frombuffer(_read(blob, nbytes), dtype=dt).reshape(shape)
                t_off, t_len = header["terms"]
                blob.seek(8 + size + int(t_off))
                text = bytes(_read(blob, int(t_len))).decode("utf-8")
        except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"damaged search index ({exc})") from exc
        missing = [name for name in _ARRAYS if name not in self.arrays]
        if missing:
            raise ValueError(f"damaged search index (no {', '.join(missing)})")
        self.terms = text.split("\n") if text else []
        self.ids = {t: i for i, t in enumerate(self.terms)}
        self.n_listings = int(header["n_listings"])
        self.rowid = self.arrays["rowid"]
        self.size = len(self.arrays["kind"])
        counts = conn.execute(f"SELECT ({_listing_count(conn)}), (SELECT count(*) FROM oncall_schedules),"
                              " (SELECT max(rowid) FROM listings)").fetchone()
        if (counts[0] != self.n_listings or counts[0] + counts[1] != self.size
                or (self.n_listings and int(self.rowid[self.n_listings - 1]) != counts[2])):
            raise ValueError("row counts differ")


def _read(blob, nbytes: int) -> bytearray:
    """``nbytes`` of a blob from where it stands, a piece at a time (index._stored_parts says why)."""
    data = unfilled(nbytes)
    for start in range(0, nbytes, _BLOB_PIECE):
        piece = blob.read(min(_BLOB_PIECE, nbytes - start))
        if len(piece) != min(_BLOB_PIECE, nbytes - start):
            raise sqlite3.DatabaseError("the stored search index ended early")
        data[start:start + len(piece)] = piece
    return data


class IndexUpdate:
    """The stored index of a chain's base, and what the chain touches; ``finish`` makes the new index."""

    def __init__(self, old: _OldIndex, listing_ids: set, schedule_ids: set, old_rows: list[int]):
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
            old = _OldIndex(conn)
        except (sqlite3.DatabaseError, ValueError) as exc:
            log.info("the base's stored search index cannot be updated (%s); building", exc)
            return None
        if len(listing_ids) + len(schedule_ids) > MAX_CHANGED_SHARE * max(old.size, 1):
            return None
        update = cls(old, listing_ids, schedule_ids, [])
        n_l = old.n_listings
        for table, ids, first, last in (("listings", listing_ids, 0, n_l),
                                         ("oncall_schedules", schedule_ids, n_l, old.size)):
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
        A = old.arrays  # each popped once used: its memory goes (_OldIndex)
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
        if len(kept) + len(old_touched) != old.size or len(np.unique(old_touched)) != len(old_touched):
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
            arr[row_map[kept]] = A.pop(name)[kept]
            arr[s_map] = S[name]
        A.pop("rowid")
        old.rowid = None
        numbers = {}
        for way in ("fwd", "rev"):
            rows = row_map[A.pop(f"num_{way}_row")]
            keep = rows >= 0
            key, (rows, kinds) = _merge(A.pop(f"num_{way}")[keep], [rows[keep], A.pop(f"num_{way}_kind")[keep]],
                                        S[f"num_{way}"], [s_map[S[f"num_{way}_row"]], S[f"num_{way}_kind"]])
            numbers[f"num_{way}"], numbers[f"num_{way}_row"], numbers[f"num_{way}_kind"] = \
                key, rows.astype(np.int32), kinds
            del rows, keep, key, kinds

        # vocabulary: the old words, then the touched rows' new ones
        terms = list(old.terms)
        ids = old.ids
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

        # name postings (word -> rows, fields)
        row_map32 = row_map.astype(np.int32)
        s_map32 = s_map.astype(np.int32)
        rt_off, (rt_rows, rt_field) = _csr_update(
            A.pop("rt_off"), [A.pop("rt_rows"), A.pop("rt_field")], row_map32, len(terms),
            s_term_ids[_expand(S["rt_off"])], [s_map32[S["rt_rows"]], S["rt_field"]])

        # phrases: an old one with the same field and words, else a new one
        phrase_field = list(A["phrase_field"].tolist())
        phrase_of = self._phrase_keys(A, old.terms)
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
        s_pr_phr = s_phr_ids[_expand(S["pr_off"])]
        if (s_pr_phr < 0).any():
            return None
        pr_off, (pr_rows,) = _csr_update(A.pop("pr_off"), [A.pop("pr_rows")], row_map32, P, s_pr_phr,
                                         [s_map32[S["pr_rows"]]])
        phrase_size = np.diff(pr_off)
        pt_term = np.concatenate([_expand(A["pt_off"]), np.array(pt_new_term, dtype=np.int64)])
        pt_phr = np.concatenate([A["pt_phr"].astype(np.int64), np.array(pt_new_phr, dtype=np.int64)])

        # drop phrases left without rows and words left without rows (a full build has neither)
        live_p = phrase_size > 0
        keep = live_p[pt_phr]
        pt_term, pt_phr = pt_term[keep], pt_phr[keep]
        V = len(terms)
        df = np.diff(rt_off).astype(np.float64)
        if len(pt_term):
            df += np.bincount(pt_term, weights=phrase_size[pt_phr].astype(np.float64), minlength=V)
        live_t = df > 0
        if "\x01" in ids:  # build.bulk_words' row marker: a full build keeps it in the vocabulary, unused
            live_t[ids["\x01"]] = True
        if not live_p.all():
            p_map = np.cumsum(live_p) - 1
            pr_off, pt_phr = _drop_empty(pr_off, live_p), p_map[pt_phr]
            phrase_field = np.array(phrase_field, dtype=np.uint8)[live_p]
            P = int(live_p.sum())
        else:
            phrase_field = np.array(phrase_field, dtype=np.uint8)
        same_vocabulary = bool(live_t.all()) and not extra
        if not live_t.all():
            t_map = np.cumsum(live_t) - 1
            rt_off, pt_term = _drop_empty(rt_off, live_t), t_map[pt_term]
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
            V0 = len(old.terms)
            t_map = np.cumsum(live_t) - 1
            keep = live_t[A["ph_terms"]]
            ph_keys, ph_terms = A["ph_keys"][keep], t_map[A["ph_terms"][keep]]
            fresh = phonetic_arrays([terms[i] for i in range(int(live_t[:V0].sum()), V)])
            ph_keys, (ph_terms,) = _merge(ph_keys, [ph_terms], fresh["ph_keys"],
                                          [fresh["ph_terms"].astype(np.int64) + int(live_t[:V0].sum())])
            vocab = vocabulary_arrays(terms, df, phonetic=dict(ph_keys=ph_keys, ph_terms=ph_terms.astype(np.int32)))

        arrays = dict(kind=kind, rowid=rowid, name_len=name_len,
                      name_rank=self._name_rank(conn, A.pop("name_rank"), row_map, s_map, s_names + s_sched,
                                                new_l, new_s),
                      rt_off=rt_off, rt_rows=rt_rows, rt_field=rt_field,
                      pt_off=_offsets(pt_term, V), pt_phr=pt_phr.astype(np.int32), phrase_field=phrase_field,
                      pr_off=pr_off, pr_rows=pr_rows, **vocab, **numbers)
        self.old = None
        return SearchIndex(conn, arrays, terms, default_synonyms(), n_l)

    # ------------------------------------------------------------------------------------------ parts

    def _small_database(self, conn: sqlite3.Connection, listing_ids: list) -> tuple[sqlite3.Connection, int]:
        """An in-memory database of the indexed tables holding only the touched rows, as they are now
        (same rowids, so the same order)."""
        small = sqlite3.connect(":memory:")
        small.execute("PRAGMA temp_store = MEMORY")  # its rows are plaintext too: no sort spills to a file
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
