"""membuf.unfilled: the large buffers decryption and decompression fill without zero-filling them first."""

from __future__ import annotations

import os
import random
from datetime import datetime, timezone

import pytest

from backup_operator import membuf
from backup_operator.errors import CorruptSnapshot
from backup_operator.snapshot import envelope

CREATED = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("n", [0, 1, 4096, membuf.SMALL - 1, membuf.SMALL, 3 * membuf.SMALL + 17])
def test_unfilled_is_a_writable_bytearray_of_the_asked_length(n):
    buffer = membuf.unfilled(n)
    assert type(buffer) is bytearray and len(buffer) == n
    data = os.urandom(n)
    memoryview(buffer)[:] = data
    assert buffer == data
    del buffer[n // 2:]  # trimmed as decryption trims its buffer
    assert buffer == data[: n // 2]


def test_a_huge_request_is_a_memory_error_not_a_crash():
    with pytest.raises(MemoryError):
        membuf.unfilled(1 << 62)


def test_a_database_larger_than_the_plain_threshold_round_trips(signer, desktop_key):
    # Several MiB, partly incompressible: both the decrypted payload and the unpacked database are
    # unfilled buffers; every byte of them must be what was sealed.
    rng = random.Random(7)
    database = b"".join(rng.randbytes(4096) + bytes(4096) for _ in range(600))
    assert len(database) > 4 * membuf.SMALL
    blob = envelope.seal(database, snapshot_version=4, created_at=CREATED, expires_at=CREATED,
                         recipients=[desktop_key.public], signer=signer)
    assert len(blob) > membuf.SMALL
    header = envelope.verify(blob, [signer.public])
    assert envelope.decrypt(blob, header, desktop_key) == database
    # One byte short of the stated size: refused, never a buffer with a tail that was never written.
    with pytest.raises(CorruptSnapshot):
        envelope.decrypt(blob, header, desktop_key, max_database=len(database) - 1)
