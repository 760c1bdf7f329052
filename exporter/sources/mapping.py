"""Mapping a source's own columns onto the model's columns (shared by the CSV and SQL sources).

For each model table a source feeds, the config may give::

    columns   = { model_column = "source column", ... }   # default: a source column of the same name
    constants = { model_column = "value", ... }           # the same value on every row (kind = "person")
    values    = { model_column = { "source value" = "model value" } }   # recode (e.g. "MD" -> "person")
    templates = { model_column = "{source column} {other source column}" }   # built from several columns
    ignore    = ["source column", ...]                    # read but not used

A template names source columns in braces (``display_name = "{given_name} {surname}"``); an empty or
NULL column leaves no double space behind (spaces are collapsed and trimmed).

A source column that is neither mapped nor a model column is an error, not silently dropped: a query
returning wrong columns must say so by name rather than build a snapshot without phone numbers.

This module must never read or write anything; it only renames and recodes values.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from backup_operator.core.model import CONTACT_COLUMNS, LISTING_COLUMNS, SCHEDULE_COLUMNS, SHIFT_COLUMNS
from backup_operator.errors import ConfigError

from backup_operator.errors import SourceError

__all__ = ["MODEL_COLUMNS", "REQUIRED", "ColumnMapping", "check_keys", "positive"]

MODEL_COLUMNS: dict[str, dict[str, type]] = {
    "listings": LISTING_COLUMNS,
    "contact_methods": {k: v for k, v in CONTACT_COLUMNS.items() if k not in ("id", "digits")},
    "schedules": SCHEDULE_COLUMNS,
    "shifts": {k: v for k, v in SHIFT_COLUMNS.items() if k != "id"},
}
REQUIRED = {
    "listings": ("id", "kind", "display_name"),
    "contact_methods": ("listing_id", "kind", "value"),
    "schedules": ("id", "name", "timezone"),
    "shifts": ("schedule_id", "listing_id", "start_utc", "end_utc"),
}


def positive(spec: dict[str, Any], key: str, default: float, where: str) -> float:
    """A positive number setting of a source (a timeout, a size), refused by name when it is not one."""
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{where}: {key} must be a number above 0, not {value!r}.")
    return float(value)


def check_keys(spec: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(allowed))}).")


@dataclass
class ColumnMapping:
    table: str
    columns: dict[str, str] = field(default_factory=dict)  # model column -> source column
    constants: dict[str, Any] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    ignore: set[str] = field(default_factory=set)
    templates: dict[str, str] = field(default_factory=dict)  # model column -> "{source column} …"
    template_fields: dict[str, list[str]] = field(default_factory=dict)  # model column -> source columns

    @classmethod
    def from_spec(cls, table: str, spec: dict[str, Any], where: str) -> "ColumnMapping":
        if table not in MODEL_COLUMNS:
            raise ConfigError(f"{where}: table {table!r} is not one of {', '.join(MODEL_COLUMNS)}.")
        model = MODEL_COLUMNS[table]
        mapping = cls(table, dict(spec.get("columns", {})), dict(spec.get("constants", {})),
                      {k: dict(v) for k, v in spec.get("values", {}).items()}, set(spec.get("ignore", [])),
                      dict(spec.get("templates", {})))
        for name, template in mapping.templates.items():
            if not isinstance(template, str):
                raise ConfigError(f"{where}: templates.{name} must be text like \"{{given_name}} {{surname}}\".")
            try:
                parts = list(string.Formatter().parse(template))
            except ValueError as exc:
                raise ConfigError(f"{where}: templates.{name} {template!r} is not a template ({exc}); write "
                                  "source columns in braces, like \"{given_name} {surname}\".") from None
            fields = [f for _, f, spec_, conv in parts if f is not None]
            if any(not f or conv or spec_ for _, f, spec_, conv in parts if f is not None):
                raise ConfigError(f"{where}: templates.{name} {template!r}: put only a source column's name in "
                                  "each pair of braces.")
            if name in mapping.columns or name in mapping.constants:
                raise ConfigError(f"{where}: {name} has a template and also a column or constant; keep one.")
            mapping.template_fields[name] = fields
        for kind, names in (("columns", mapping.columns), ("constants", mapping.constants),
                            ("values", mapping.values), ("templates", mapping.templates)):
            for name in names:
                if name not in model:
                    raise ConfigError(f"{where}: {kind} names {name!r}, which is not a column of "
                                      f"{table} ({', '.join(model)}).")
        return mapping

    def bind(self, source_columns: list[str], where: str) -> dict[str, str]:
        """Check the source's actual columns against the mapping; return model column -> source column."""
        present = list(source_columns)
        bound: dict[str, str] = {}
        for model_col in MODEL_COLUMNS[self.table]:
            if model_col in self.columns:
                src = self.columns[model_col]
                if src not in present:
                    raise SourceError(f"{where}: the mapped column {src!r} (for {model_col}) is missing; "
                                      f"the source has {', '.join(present) or 'no columns'}.")
                bound[model_col] = src
            elif model_col in present and model_col not in self.constants and model_col not in self.templates:
                bound[model_col] = model_col
        wanted = sorted({f for fields in self.template_fields.values() for f in fields if f not in present})
        if wanted:
            raise SourceError(f"{where}: the templates use {', '.join(map(repr, wanted))}, which the source does "
                              f"not have; it has {', '.join(present) or 'no columns'}.")
        used = set(bound.values()) | self.ignore | {f for fields in self.template_fields.values() for f in fields}
        stray = [c for c in present if c not in used]
        if stray:  # every one of them in one message: fixing them one run at a time wastes an afternoon
            named = ", ".join(map(repr, stray))
            what = (f"column {named} is not a column" if len(stray) == 1
                    else f"{len(stray)} columns ({named}) are not columns")
            raise SourceError(f"{where}: {what} of {self.table} and not mapped; rename them in the query, map "
                              "them (columns, templates), or list them in ignore "
                              f"({self.table} columns: {', '.join(MODEL_COLUMNS[self.table])}).")
        missing = [c for c in REQUIRED[self.table] if c not in bound and c not in self.constants
                   and c not in self.templates]
        if missing:
            raise SourceError(f"{where}: no column gives {', '.join(missing)} for {self.table}; the source "
                              f"has {', '.join(present) or 'no columns'}.")
        return bound

    def apply(self, row: dict[str, Any], bound: dict[str, str]) -> dict[str, Any]:
        out = dict(self.constants)
        for model_col, src in bound.items():
            out[model_col] = row.get(src)
        for model_col, template in self.templates.items():
            filled = template.format_map({f: "" if row.get(f) is None else row.get(f)
                                          for f in self.template_fields[model_col]})
            out[model_col] = " ".join(filled.split())
        for model_col, recode in self.values.items():
            value = out.get(model_col)
            key = "" if value is None else str(value)
            if key in recode:
                out[model_col] = recode[key]
        return out
