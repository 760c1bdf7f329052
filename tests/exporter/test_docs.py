"""docs/EXPORTER.md's command reference is the programs' own --help, so the two cannot drift apart."""

from __future__ import annotations

import contextlib
import io
import os
import re

from exporter.cli import build_parser, main

from exporter_support import REPO

DOC = REPO / "docs" / "EXPORTER.md"
START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def _commands(parser, prefix=()):
    import argparse

    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, prefix + (name,))
    return found


def generated() -> str:
    parts = [START]
    for command in _commands(build_parser()):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main([*command, "--help"])
            except SystemExit:
                pass
        title = " ".join(("backup-operator-export",) + command)
        parts += [f"### `{title}`", "", "```", out.getvalue().rstrip(), "```", ""]
    parts.append(END)
    return "\n".join(parts)


def test_command_reference_matches_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal width
    text = DOC.read_text(encoding="utf-8")
    current = re.search(re.escape(START) + ".*?" + re.escape(END), text, re.S).group(0)
    fresh = generated()
    if os.environ.get("BO_UPDATE_DOCS") == "1" and current != fresh:
        DOC.write_text(text.replace(current, fresh), encoding="utf-8")
        current = fresh
    assert current == fresh, "docs/EXPORTER.md is out of date: run BO_UPDATE_DOCS=1 pytest tests/exporter/test_docs.py"


def test_every_config_section_is_documented():
    from exporter.config import CheckSettings, ExportSettings, PublishSettings, ScheduleSettings

    text = DOC.read_text(encoding="utf-8")
    for cls in (ExportSettings, CheckSettings, PublishSettings, ScheduleSettings):
        for name in cls.__dataclass_fields__:
            if name != "jobs":
                assert f"`{name}`" in text, f"{cls.__name__}.{name} is not in docs/EXPORTER.md"
