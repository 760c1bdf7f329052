"""The export runs its bulk stages with fewer garbage collections (pipeline.bulk_collection), and gives
the collector back as it found it, whether the export passed, was refused or failed."""

from __future__ import annotations

import gc

import pytest

from backup_operator.errors import ExportRefused

from exporter import pipeline

from exporter_support import DEMO


def test_collections_are_fewer_inside_and_restored_after_an_error():
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(RuntimeError):
        with pipeline.bulk_collection():
            assert gc.get_threshold()[0] >= pipeline.BULK_GC_THRESHOLD
            assert gc.isenabled()
            raise RuntimeError("a source failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_reference_cycles_made_inside_are_still_collected():
    class Node:
        pass

    with pipeline.bulk_collection():
        node = Node()
        node.self = node
        marker = id(node)
        del node
        gc.collect()
        assert all(id(o) != marker for o in gc.get_objects() if isinstance(o, Node))


def test_a_refused_export_restores_the_collector(demo_exporter, tmp_path):
    # A listings file with its header only: the contact methods then name no listing, and the export
    # is refused after the read and the checks ran inside bulk_collection.
    empty = tmp_path / "listings.csv"
    empty.write_text((DEMO / "listings.csv").read_text(encoding="utf-8").splitlines()[0] + "\n",
                     encoding="utf-8")
    config = demo_exporter.home.config
    config.write_text(config.read_text(encoding="utf-8").replace(str(DEMO / "listings.csv"), str(empty)),
                      encoding="utf-8")
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(ExportRefused):
        pipeline.run_export(demo_exporter.home)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_freed_memory_is_given_back_without_harm():
    data = [bytearray(1 << 20) for _ in range(64)]  # 64 MB allocated, then freed
    del data
    pipeline.give_back_freed_memory()  # malloc_trim on glibc; nothing elsewhere
    assert bytearray(1 << 20) == bytes(1 << 20)  # and the allocator still works


def test_rows_the_model_refuses_stop_the_export_with_their_names(demo_exporter, tmp_path):
    """The model's validation in the build (after the bulk read): its refusal names the rows, and nothing
    is published or numbered."""
    from backup_operator.errors import ValidationError

    from exporter.state import State

    lines = (DEMO / "listings.csv").read_text(encoding="utf-8").splitlines()
    header, first, rest = lines[0], lines[1], lines[2:]
    fields = first.split(",")
    fields[1] = "robot"  # kind: not a listing kind
    bad = tmp_path / "listings.csv"
    bad.write_text("\n".join([header, ",".join(fields), *rest]) + "\n", encoding="utf-8")
    config = demo_exporter.home.config
    config.write_text(config.read_text(encoding="utf-8").replace(str(DEMO / "listings.csv"), str(bad)),
                      encoding="utf-8")
    with pytest.raises(ValidationError) as raised:
        pipeline.run_export(demo_exporter.home)
    assert f"listing 1 (id {fields[0]!r}): kind 'robot' is not one of" in str(raised.value)
    assert demo_exporter.snapshots("desk-a") == []
    assert State(demo_exporter.home.state).last_version() == 0
