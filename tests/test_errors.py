"""The error tree: one module, every class exported, every exit code distinct and written in the tree.

Like httpx's test of its exported members, so that adding an error cannot silently skip the docs or
reuse an exit code a script already relies on.
"""

from __future__ import annotations

import inspect
import re

from backup_operator import errors


def _error_classes() -> list[type]:
    return [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
            if issubclass(obj, errors.BackupOperatorError) and obj.__module__ == errors.__name__]


def test_every_error_is_exported_and_nothing_else():
    assert sorted(errors.__all__) == sorted(cls.__name__ for cls in _error_classes())


def test_leaf_errors_have_distinct_exit_codes():
    leaves = [cls for cls in _error_classes() if not cls.__subclasses__()]
    codes = {}
    for cls in leaves:
        assert cls.exit_code not in codes, f"{cls.__name__} reuses exit code {cls.exit_code} of {codes.get(cls.exit_code)}"
        codes[cls.exit_code] = cls.__name__
    assert 0 not in codes


def test_the_docstring_tree_names_every_error_with_its_code():
    tree = errors.__doc__
    for cls in _error_classes():
        match = re.search(rf"\b{cls.__name__}\b(?: \[(\d+)\])?", tree)
        assert match, f"{cls.__name__} is missing from the tree in errors.py"
        if match.group(1) is not None:
            assert int(match.group(1)) == cls.exit_code, f"{cls.__name__}: tree says {match.group(1)}"
