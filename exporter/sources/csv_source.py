"""CSV files with a column mapping: the common export of HR systems and on-call systems.

One ``[[sources]]`` entry per file::

    type = "csv"
    table = "listings"            # listings, contact_methods, schedules or shifts
    path = "exports/staff.csv"
    encoding = "utf-8-sig"        # default; Excel's "CSV UTF-8" starts with a byte-order mark
    delimiter = ","
    columns / constants / values / ignore   # see exporter.sources.mapping

Shift times may be UTC (``2026-11-01T05:00:00Z``), carry an offset, or be local wall times with no
offset, which are read in the shift's schedule time zone (exporter.sources.localtime's rule).

This module must never guess a column that is not mapped or named like the model's.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from backup_operator.errors import SourceError
from exporter.sources import DirectoryData, ReadWindow, source_name
from exporter.sources.mapping import ColumnMapping, check_keys

__all__ = ["read", "read_csv_table"]

_KEYS = {"type", "name", "table", "path", "encoding", "delimiter", "columns", "constants", "values", "ignore"}


def read_csv_table(path: Path, mapping: ColumnMapping, *, name: str, encoding: str = "utf-8-sig",
                   delimiter: str = ",") -> list[dict[str, Any]]:
    where = f"Source {name!r} ({path})"
    try:
        handle = open(path, newline="", encoding=encoding)
    except FileNotFoundError:
        raise SourceError(f"{where}: the file does not exist; check the path or the share.") from None
    except OSError as exc:
        raise SourceError(f"{where}: the file cannot be opened ({exc.strerror or exc}).") from None
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
        from backup_operator.errors import ConfigError
        raise ConfigError(f"{where}: a csv source needs a path and a table.")
    mapping = ColumnMapping.from_spec(spec["table"], spec, where)
    path = config.resolve(spec["path"])
    rows = read_csv_table(path, mapping, name=name, encoding=spec.get("encoding", "utf-8-sig"),
                          delimiter=spec.get("delimiter", ","))
    if spec["table"] != "shifts":
        for row in rows:
            row.pop("_where", None)
    data = so_far.part()
    data.table(spec["table"]).extend(rows)
    data.descriptions.append(f"{name} ({path.name})")
    return data
