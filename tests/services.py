"""The rule for tests that need a service (PostgreSQL, MariaDB, sshd, nginx, Xvfb): skip with the reason
on a newcomer's machine, fail with it under BO_REQUIRE_SERVICES=1 (what .ci/run sets)."""

from __future__ import annotations

import os

import pytest


def require_service(available: bool, reason: str) -> None:
    """Skip (or, with BO_REQUIRE_SERVICES=1, fail) when a service a test needs is not there."""
    if available:
        return
    if os.environ.get("BO_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (BO_REQUIRE_SERVICES=1 makes this a failure, not a skip)")
    pytest.skip(reason)
