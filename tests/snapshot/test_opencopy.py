"""The open copy: opens only whole, only with this desktop's key, only for the installed file it came from."""

from __future__ import annotations

import os
import struct

import pytest

from backup_operator.snapshot import keys, opencopy
from backup_operator.snapshot.opencopy import (CHUNK_SIZE, MAGIC, OpenCopyUnusable, OpenCopyWriter,
                                               read_open_copy)

SEALED = b"header and payload of the signed file" * 100 + bytes(range(64))
HEADER = b'{"format":2}'


def database(size: int) -> bytes:
    return (os.urandom(64) * (size // 64 + 1))[:size]


def make(path, key, data: bytes, piece: int = 65536, version: int = 7, sealed: bytes = SEALED):
    writer = OpenCopyWriter(path, key=key, version=version, sealed=sealed, sealed_header=HEADER)
    for i in range(0, len(data), piece):
        writer.write(data[i:i + piece])
    writer.commit()


def read(path, key, version: int = 7, sealed: bytes = SEALED) -> tuple[bytes, bytes]:
    out = bytearray()
    header = read_open_copy(path, key=key, version=version, sealed_size=len(sealed),
                            sealed_signature=sealed[-64:], write=out.extend)
    return bytes(out), header


@pytest.mark.parametrize("piece", [100_000, CHUNK_SIZE, 4 * CHUNK_SIZE + 7])
@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 12345,
                                  4 * CHUNK_SIZE])
def test_round_trip_at_chunk_boundaries(tmp_path, size, piece):
    key = keys.DesktopKey.generate()
    data = database(size)
    path = tmp_path / "000000000007.open"
    make(path, key, data, piece=piece)
    assert read(path, key) == (data, HEADER)
    chunks = max(1, -(-size // CHUNK_SIZE))  # whole chunks, the last one marked (never an empty extra one)
    head = len(MAGIC) + 4 + struct.unpack(">I", path.read_bytes()[len(MAGIC):len(MAGIC) + 4])[0]
    assert os.path.getsize(path) == head + size + 16 * chunks
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert size < 64 or data[:64] not in path.read_bytes()  # sealed, not plain
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_another_desktops_key_or_another_installed_file_is_refused(tmp_path):
    key, other = keys.DesktopKey.generate(), keys.DesktopKey.generate()
    path = tmp_path / "copy.open"
    make(path, key, database(2 * CHUNK_SIZE))
    with pytest.raises(OpenCopyUnusable, match="authenticate"):
        read(path, other)
    with pytest.raises(OpenCopyUnusable, match="another installed file"):
        read(path, key, version=8)
    with pytest.raises(OpenCopyUnusable, match="another installed file"):
        read(path, key, sealed=SEALED[:-1] + bytes([SEALED[-1] ^ 1]))
    with pytest.raises(OpenCopyUnusable, match="another installed file"):
        read(path, key, sealed=SEALED + b"x")
    with pytest.raises(OpenCopyUnusable, match="no open copy"):
        read(tmp_path / "missing.open", key)


def _damaged(path, change):
    data = bytearray(path.read_bytes())
    change(data)
    path.write_bytes(bytes(data))


DAMAGES = {
    "a flipped bit": (lambda d: d.__setitem__(-1, d[-1] ^ 1), "authenticate"),
    "cut at a chunk boundary": (lambda d: d.__delitem__(slice(-21, None)), "authenticate|short"),
    "cut mid-chunk": (lambda d: d.__delitem__(slice(-5, None)), "authenticate|short"),
    "bytes appended": (lambda d: d.extend(b"more"), "authenticate"),
    "another magic": (lambda d: d.__setitem__(slice(0, 4), b"XXXX"), "not an open copy"),
    "huge header length": (lambda d: d.__setitem__(slice(len(MAGIC), len(MAGIC) + 4),
                                                   struct.pack(">I", 2**31)), "header too large"),
    "header not JSON": (lambda d: d.__setitem__(len(MAGIC) + 10, ord("!")), "damaged header"),
}


@pytest.mark.parametrize("damage, words", list(DAMAGES.values()), ids=list(DAMAGES))
def test_a_damaged_copy_is_refused(tmp_path, damage, words):
    key = keys.DesktopKey.generate()
    path = tmp_path / "copy.open"
    make(path, key, database(3 * CHUNK_SIZE + 5))
    _damaged(path, damage)
    with pytest.raises(OpenCopyUnusable, match=words):
        read(path, key)


def test_chunks_cannot_be_swapped_or_dropped(tmp_path):
    key = keys.DesktopKey.generate()
    path = tmp_path / "copy.open"
    make(path, key, database(3 * CHUNK_SIZE + 5))
    blob = path.read_bytes()
    (size,) = struct.unpack(">I", blob[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4 + size
    step = CHUNK_SIZE + 16
    chunks = [blob[start + i * step:start + (i + 1) * step] for i in range(4)]
    for order in ([1, 0, 2, 3], [0, 1, 3], [0, 1, 2]):
        path.write_bytes(blob[:start] + b"".join(chunks[i] for i in order))
        with pytest.raises(OpenCopyUnusable):
            read(path, key)


def test_an_aborted_copy_leaves_nothing(tmp_path):
    key = keys.DesktopKey.generate()
    writer = OpenCopyWriter(tmp_path / "copy.open", key=key, version=7, sealed=SEALED, sealed_header=HEADER)
    writer.write(b"x" * (CHUNK_SIZE + 10))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_the_key_is_only_this_module_s(tmp_path):
    # Two copies of the same database under the same key still differ (a fresh salt each time).
    key = keys.DesktopKey.generate()
    data = database(1000)
    make(tmp_path / "a.open", key, data)
    make(tmp_path / "b.open", key, data)
    assert (tmp_path / "a.open").read_bytes() != (tmp_path / "b.open").read_bytes()
    assert opencopy.OPEN_COPY_SUFFIX == ".open"


def test_the_copy_is_checked_before_the_key_is_at_hand(tmp_path):
    key = keys.DesktopKey.generate()
    data = database(2 * CHUNK_SIZE + 5)
    path = tmp_path / "copy.open"
    make(path, key, data)
    with opencopy.OpenCopy.open(path, version=7, sealed_size=len(SEALED),
                                sealed_signature=SEALED[-64:]) as copy:
        assert (copy.size, copy.chunks, copy.sealed_header) == (len(data), 3, HEADER)
    with pytest.raises(OpenCopyUnusable, match="another installed file"):
        opencopy.OpenCopy.open(path, version=8, sealed_size=len(SEALED), sealed_signature=SEALED[-64:])


def _decrypted(path, key, threads: int) -> bytes:
    with opencopy.OpenCopy.open(path, version=7, sealed_size=len(SEALED),
                                sealed_signature=SEALED[-64:]) as copy:
        out = bytearray(copy.size)
        written = []

        def write_at(offset, piece):
            written.append((offset, len(piece)))
            out[offset:offset + len(piece)] = piece

        copy.decrypt(key, write_at, threads=threads)
    assert sorted(written) == [(o, min(CHUNK_SIZE, len(out) - o)) for o in range(0, len(out), CHUNK_SIZE)]
    return bytes(out)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_any_number_of_threads_gives_the_same_bytes_and_refuses_a_damaged_chunk_in_any_of_them(tmp_path,
                                                                                               threads):
    key = keys.DesktopKey.generate()
    data = database(13 * CHUNK_SIZE + 77)
    path = tmp_path / "copy.open"
    make(path, key, data)
    assert _decrypted(path, key, threads) == data
    blob = path.read_bytes()
    start = len(blob) - (len(data) + 14 * 16)
    for chunk in (0, 5, 9, 13):  # each in another thread's run of chunks (four chunks a run)
        damaged = bytearray(blob)
        damaged[start + chunk * (CHUNK_SIZE + 16) + 3] ^= 1
        path.write_bytes(bytes(damaged))
        with pytest.raises(OpenCopyUnusable, match=f"chunk {chunk} does not authenticate"):
            _decrypted(path, key, threads)
