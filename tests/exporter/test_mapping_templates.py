"""Mapping a source's columns without a script (issue 11, problem 6).

A CSV (or a query) with given-name and surname columns could not be loaded: ``display_name`` had to be one
column, and the columns nobody mapped were reported one per attempt. Templates build a model column from
several source columns; every unmapped column is named in one message. On CSV files and on real
PostgreSQL and MariaDB tables.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path

import pytest

from backup_operator.errors import ConfigError, SourceError

from exporter.config import parse_config
from exporter.sources import ReadWindow, read_sources

from site_database import MARIADB_URL, PG_URL, reachable

WINDOW = ReadWindow.around(datetime(2026, 6, 1, tzinfo=timezone.utc), 1, 1)
HR_EXPORT = ("emp_no,given_name,middle,surname,badge,cost_centre,kind\n"
             "e1,Alice,,Smith,B-100,CC-7,person\n"
             "e2,José,María,Núñez,B-101,CC-7,person\n"
             "e3,  Bob ,,O'Brien,B-102,CC-9,person\n")


def _read(tmp_path: Path, csv_text: str, **mapping):
    path = tmp_path / "hr.csv"
    path.write_text(csv_text, encoding="utf-8")
    source = {"type": "csv", "table": "listings", "path": str(path), **mapping}
    return read_sources(parse_config({"sources": [source]}, tmp_path / "config.toml"), WINDOW)


def test_display_name_from_given_name_and_surname(tmp_path):
    data = _read(tmp_path, HR_EXPORT, columns={"id": "emp_no", "family_name": "surname"},
                 templates={"display_name": "{given_name} {middle} {surname}"}, ignore=["badge", "cost_centre"])
    assert [(r["id"], r["display_name"], r["given_name"], r["family_name"]) for r in data.listings] == [
        ("e1", "Alice Smith", "Alice", "Smith"),          # the empty middle name leaves no double space
        ("e2", "José María Núñez", "José", "Núñez"),
        ("e3", "Bob O'Brien", "Bob", "O'Brien"),
    ]


def test_every_unmapped_column_is_named_in_one_message(tmp_path):
    with pytest.raises(SourceError) as refused:
        _read(tmp_path, HR_EXPORT, columns={"id": "emp_no", "family_name": "surname"},
              templates={"display_name": "{given_name} {surname}"})
    message = str(refused.value)
    assert "3 columns ('middle', 'badge', 'cost_centre') are not columns of listings" in message
    assert "ignore" in message and "templates" in message


def test_template_mistakes_are_named(tmp_path):
    with pytest.raises(SourceError, match="the templates use 'surnmae', which the source does not have"):
        _read(tmp_path, HR_EXPORT, columns={"id": "emp_no"}, templates={"display_name": "{given_name} {surnmae}"},
              ignore=["middle", "badge", "cost_centre", "surname"])
    for bad in ("{given_name!r}", "{given_name:>10}", "{}", "{given_name"):
        with pytest.raises(ConfigError, match="templates.display_name"):
            _read(tmp_path, HR_EXPORT, columns={"id": "emp_no"}, templates={"display_name": bad})
    with pytest.raises(ConfigError, match="templates names 'full_name', which is not a column of listings"):
        _read(tmp_path, HR_EXPORT, templates={"full_name": "{given_name}"})


@pytest.mark.parametrize("url", [PG_URL, MARIADB_URL], ids=["postgresql", "mariadb"])
def test_templates_in_a_sql_source(url, require, tmp_path):
    ok, why = reachable(url)
    require(ok, why)
    from sqlalchemy import create_engine, text

    table = f"hr_{secrets.token_hex(3)}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (emp_no VARCHAR(10), given_name VARCHAR(40), "
                          "surname VARCHAR(40), pager VARCHAR(20))"))
        conn.execute(text(f"INSERT INTO {table} VALUES ('e1', 'Alice', 'Smith', NULL), "
                          "('e2', 'Bob', NULL, '555')"))
    try:
        source = {"type": "sql", "name": "hr", "url": url,
                  "queries": {"listings": f"SELECT emp_no, given_name, surname, pager FROM {table} ORDER BY emp_no"},
                  "mapping": {"listings": {"columns": {"id": "emp_no", "family_name": "surname"},
                                           "constants": {"kind": "person"},
                                           "templates": {"display_name": "{given_name} {surname}"}}}}
        config = parse_config({"sources": [source]}, tmp_path / "config.toml")
        with pytest.raises(SourceError, match="column 'pager' is not a column of listings"):
            read_sources(config, WINDOW)
        source["mapping"]["listings"]["ignore"] = ["pager"]
        data = read_sources(parse_config({"sources": [source]}, tmp_path / "config.toml"), WINDOW)
        assert [(r["id"], r["display_name"]) for r in data.listings] == [("e1", "Alice Smith"), ("e2", "Bob")]
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {table}"))
        engine.dispose()
