"""Printing results: ``backup-operator search``, one ranked block (or JSON line) per query.

Reads hit details from the snapshot for display only; ranking is entirely ``SearchIndex.search``'s.
Every field from the directory goes through ``textsafe.shown``: data never steers the terminal.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterable
from typing import TextIO

from backup_operator.core.search.index import SearchIndex
from backup_operator.core.search.results import Hit
from backup_operator.textsafe import shown

__all__ = ["run_search_cli"]


def _describe(conn: sqlite3.Connection, hit: Hit) -> str:
    if hit.kind == "schedule":
        r = conn.execute("SELECT department, site FROM oncall_schedules WHERE id = ?", (hit.id,)).fetchone()
        extra = " · ".join(x for x in (r[0], r[1]) if x) if r else ""
        return f"{shown(hit.name)}  [on-call schedule]" + (f"  {shown(extra)}" if extra else "")
    r = conn.execute("SELECT title, department, site FROM listings WHERE id = ?", (hit.id,)).fetchone()
    c = conn.execute("SELECT kind, value FROM contact_methods WHERE listing_id = ? ORDER BY rank, id LIMIT 1",
                     (hit.id,)).fetchone()
    bits = [x for x in (r[0], r[1], r[2]) if x] if r else []
    if c:
        bits.append(f"{c[0]} {c[1]}")
    return shown(hit.name) + (f"  — {shown(' · '.join(bits))}" if bits else "")


def run_search_cli(conn: sqlite3.Connection, query: str, *, limit: int, as_json: bool, out: TextIO,
                   inp: TextIO | None = None, index: SearchIndex | None = None) -> int:
    """``backup-operator search``: answer ``query`` (or, for ``-``, each line of ``inp``/stdin).

    Text: one block per query (a ``# query`` line when reading several, then one ranked line per hit).
    ``--json``: one JSON object per query and line: ``{"query", "results": [{"rank", "kind", "id", "name",
    "listing_kind", "score", "matched": [{"field", "text", "spans"}]}]}``.
    Returns 0 when every query found something, 1 when at least one found nothing.
    """
    index = index or SearchIndex.open(conn)
    if query == "-":
        queries: Iterable[str] = (line.rstrip("\n") for line in (inp or sys.stdin))
        many = True
    else:
        queries = [query]
        many = False
    status = 0
    for q in queries:
        if many and not q.strip():
            continue
        hits = index.search(q, limit=limit)
        if not hits:
            status = 1
        if as_json:
            results = [dict(rank=i, **h.to_json()) for i, h in enumerate(hits, 1)]
            out.write(json.dumps({"query": q, "results": results}, ensure_ascii=False) + "\n")
            continue
        if many:
            out.write(f"# {shown(q)}\n")
        if not hits:
            out.write("  (nothing found)\n")
        for i, h in enumerate(hits, 1):
            out.write(f"{i:3d}. {_describe(conn, h)}  [{shown(h.id)}]\n")
        if many:
            out.write("\n")
    return status
