"""The demo hospital (Lakeshore Regional Health, resources/demo) as a snapshot database, for tests.

Built the way ``backup-operator-export demo`` builds it: the demo exporter config read by the real
sources (CSV files and the rota expander) and the real build stage (with the stored search index),
around a fixed instant so that every test sees the same rota. Cached per instant for the session.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

# A Wednesday in March, before US daylight saving starts, at 14:00 in Chicago (the demo's main zone).
DEMO_NOW = datetime(2026, 3, 4, 20, 0, tzinfo=UTC)


@cache
def demo_database(now: datetime = DEMO_NOW, version: int = 1) -> bytes:
    from exporter import pipeline
    from exporter.config import parse_config
    from exporter.demo import demo_config, demo_resources

    config = parse_config(demo_config(demo_resources()), None)
    data = pipeline.read(config, now)
    return pipeline.build(data, config, version=version, now=now)
