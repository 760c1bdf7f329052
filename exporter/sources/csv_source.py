"""CSV files with a column mapping: the common export of HR systems and on-call systems.

One ``[[sources]]`` entry per file::

    type = "csv"
    table = "listings"            # listings, contact_methods, schedules or shifts
    path = "exports/staff.csv"
    encoding = "utf-8-sig"        # default; Excel's "CSV UTF-8" starts with a byte-order mark
    delimiter = ","
    naive_times = "local"         # shift times without an offset: schedule wall time ("local") or "utc"
    timeout_s = 30                # longest wait for data (a FIFO, a device); max_mib = 1024 caps the size
    columns / constants / values / templates / ignore   # see exporter.sources.mapping

Shift times may be UTC (``2026-11-01T05:00:00Z``) or carry an offset; times without an offset are read
as ``naive_times`` says, and refused (naming the option) when it is not set.

This module must never guess a column that is not mapped or named like the model's.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from backup_operator.errors import ConfigError, SourceError
from exporter.sources import DirectoryData, ReadWindow, source_name
from exporter.sources.files import DEFAULT_TIMEOUT_S, open_text
from exporter.sources.mapping import ColumnMapping, check_keys, positive

__all__ = ["read", "read_csv_table"]

_KEYS = {"allow_overlaps",
         "type", "name", "table", "path", "encoding", "delimiter", "columns", "constants", "values", "ignore",
         "templates", "naive_times", "timeout_s", "max_mib"}
DEFAULT_MAX_MIB = 1024


def read_csv_table(path: Path, mapping: ColumnMapping, *, name: str, encoding: str = "utf-8-sig",
                   delimiter: str = ",", timeout_s: float = DEFAULT_TIMEOUT_S,
                   max_mib: float = DEFAULT_MAX_MIB) -> list[dict[str, Any]]:
    where = f"Source {name!r} ({path})"
    try:
        handle = open_text(path, where=f"Source {name!r}", encoding=encoding, timeout_s=timeout_s,
                           max_bytes=int(max_mib * 2**20))
    except LookupError:
        raise ConfigError(f"{where}: encoding {encoding!r} is not known (try \"utf-8-sig\" or \"cp1252\").") \
            from None
    rows: list[dict[str, Any]] = []
    with handle:
        try:
            reader = csv.DictReader(handle, delimiter=delimiter, strict=True)
            header = reader.fieldnames
            if not header:
                raise SourceError(f"{where}: the file is empty (no header row).")
            if len(set(header)) != len(header):
                dup = next(h for h in header if header.count(h) > 1)
                raise SourceError(f"{where}: the header names column {dup!r} twice.")
            bound = mapping.bind([h.strip() for h in header], where)
            # Map by the stripped header name, but read by the raw one.
            raw_of = {h.strip(): h for h in header}
            for record in reader:
                line = reader.line_num
                if None in record:
                    raise SourceError(f"{where}, line {line}: the row has more fields than the header "
                                      f"({len(header)}); check for an unquoted delimiter.")
                if any(v is None for v in record.values()):
                    raise SourceError(f"{where}, line {line}: the row has fewer fields than the header "
                                      f"({len(header)}).")
                row = mapping.apply({h: record[raw_of[h]] for h in raw_of}, bound)
                row["_where"] = f"{where}, line {line}"
                rows.append(row)
        except csv.Error as exc:
            # The reader has not counted the offending row yet: it starts on the next line.
            raise SourceError(f"{where}, line {reader.line_num + 1}: the CSV is malformed ({exc}).") from None
        except UnicodeDecodeError as exc:
            raise SourceError(f"{where}: the file is not {encoding} text ({exc.reason} at byte "
                              f"{exc.start}); set encoding in the config (e.g. \"cp1252\").") from None
    return rows


def read(spec: dict[str, Any], config, window: ReadWindow, so_far: DirectoryData) -> DirectoryData:
    name = source_name(spec)
    where = f"{config.path} source {name!r}"
    check_keys(spec, _KEYS, where)
    if "path" not in spec or "table" not in spec:
        raise ConfigError(f"{where}: a csv source needs a path and a table.")
    mapping = ColumnMapping.from_spec(spec["table"], spec, where)
    path = config.resolve(spec["path"])
    rows = read_csv_table(path, mapping, name=name, encoding=spec.get("encoding", "utf-8-sig"),
                          delimiter=spec.get("delimiter", ","),
                          timeout_s=positive(spec, "timeout_s", DEFAULT_TIMEOUT_S, where),
                          max_mib=positive(spec, "max_mib", DEFAULT_MAX_MIB, where))
    if spec["table"] != "shifts":
        for row in rows:
            row.pop("_where", None)
    data = so_far.part()
    data.table(spec["table"]).extend(rows)
    data.descriptions.append(f"{name} ({path.name})")
    return data
