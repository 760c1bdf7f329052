"""Compression bombs: a small signed snapshot that would inflate far past the bound is refused with its
memory staying well under the bound (issue 10 item 7: a 4.2 MB signed file reached 8.45 GB before refusal).

Each bomb is sealed and signed by the pinned key (the signature cannot stop a compromised or buggy
exporter), then opened in a fresh process, which reports its resident memory before ``envelope.decrypt``
and its peak during it (Linux: the peak is reset through /proc/self/clear_refs, then read as VmHWM). Both payload formats are covered: format 2 (one Zstandard frame, which
states its size) and format 1 (zlib, which states none).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
import zstandard

from backup_operator.snapshot import envelope
from backup_operator.snapshot import format as F

MIB = 1024 * 1024
FILE_KEY = bytes(range(32))
NONCE = bytes(range(100, 116))

_CHILD = textwrap.dedent("""
    import json, sys
    from backup_operator.snapshot import envelope, keys
    blob = open(sys.argv[1], "rb").read()
    key = keys.DesktopKey.from_raw(bytes.fromhex(sys.argv[2]))
    trusted = [keys.SignerPublicKey.from_text(sys.argv[3])]
    cap = int(sys.argv[4])
    header = envelope.verify(blob, trusted)

    def status(field):
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(field + ":"))

    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # the peak (VmHWM) starts again from the current size
    before = status("VmRSS")
    try:
        envelope.decrypt(blob, header, key, cap)
        outcome = "opened"
    except Exception as exc:
        outcome = type(exc).__name__ + ": " + str(exc)
    after = status("VmHWM")
    print(json.dumps({"before": before, "after": after, "outcome": outcome}))
""")


def _rle_frame(size: int, stated: int | None) -> bytes:
    """A Zstandard frame of ``size`` zero bytes (a multiple of 128 KiB) made of RLE blocks, 4 bytes per
    128 KiB, stating ``stated`` as its size (or no size). RFC 8878 §3.1.1."""
    block = 128 * 1024
    assert size % block == 0
    out = bytearray(zstandard.FRAME_HEADER)
    if stated is None:
        out += bytes([0x00, 7 << 3])  # no content size, not single-segment; window 2^(10+7) = 128 KiB
    else:
        out += bytes([0xC0, 7 << 3]) + stated.to_bytes(8, "little")  # an 8-byte content size
    count = size // block
    middle = ((block << 3) | (1 << 1)).to_bytes(3, "little") + b"\0"
    last = ((block << 3) | (1 << 1) | 1).to_bytes(3, "little") + b"\0"
    return bytes(out) + middle * (count - 1) + last


def _zlib_bomb(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes (a multiple of 16 MiB), without its end: it only has to run
    past the bound. Each 16 MiB piece is flushed in full, so its compressed form repeats exactly."""
    piece = bytes(16 * MIB)
    deflate = zlib.compressobj(9)
    head = deflate.compress(piece) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(piece) + deflate.flush(zlib.Z_FULL_FLUSH)
    return head + again * (size // len(piece) - 1)


@pytest.fixture(scope="module")
def zlib_4_3_gb() -> bytes:
    return _zlib_bomb(4352 * MIB)  # about 4.2 MB that inflate to 4.3 GB, as in issue 10


def _signed(kit, signer, desktop_key, inner: bytes, format_version: int) -> bytes:
    blob = envelope.seal(b"x", snapshot_version=5, created_at=kit.created_at(5), expires_at=kit.created_at(77),
                         recipients=[desktop_key.public], signer=signer, _file_key=FILE_KEY, _nonce=NONCE,
                         format_version=format_version)
    doc, _, _ = kit.split_snapshot(blob)
    payload = envelope.encrypt_payload(FILE_KEY, NONCE, kit.header_prefix(doc), inner, doc["chunk_size"])
    return kit.assemble_snapshot(doc, payload, sign_with=signer)


def _open_in_child(tmp_path: Path, blob: bytes, signer, desktop_key, cap: int) -> dict:
    path = tmp_path / "bomb.bosnap"
    path.write_bytes(blob)
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), desktop_key.raw().hex(),
                           signer.public.to_text(), str(cap)],
                          capture_output=True, text=True, timeout=600, env={**os.environ})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# name: (format, the compressed stream, bound, the most the refusal may take)
CASES = {
    "zstd, states its true size (1 GiB), cap 64 MiB": (2, lambda: _rle_frame(1024 * MIB, 1024 * MIB), 64 * MIB,
                                                       16 * MIB),
    "zstd, states 8 GiB, the real 4 GiB bound": (2, lambda: _rle_frame(8192 * MIB, 8192 * MIB),
                                                 F.MAX_DATABASE_BYTES, 16 * MIB),
    "zstd, states 1 MiB but holds 1 GiB": (2, lambda: _rle_frame(1024 * MIB, MIB), 64 * MIB, 16 * MIB),
    "zstd, states no size (1 GiB)": (2, lambda: _rle_frame(1024 * MIB, None), 64 * MIB, 16 * MIB),
    # A frame that states a size within the bound is unpacked up to that size and no further: what it
    # states is what a database that size would take anyway.
    "zstd, states 32 MiB but holds 1 GiB, cap 64 MiB": (2, lambda: _rle_frame(1024 * MIB, 32 * MIB), 64 * MIB,
                                                        (32 + 16) * MIB),
    "zlib, 1 GiB, cap 64 MiB": (1, lambda: _zlib_bomb(1024 * MIB), 64 * MIB, 16 * MIB),
}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")


@pytest.mark.parametrize("name", list(CASES))
def test_a_signed_bomb_is_refused_with_memory_well_under_the_bound(name, kit, signer, desktop_key, tmp_path,
                                                                    figures):
    format_version, make, cap, most = CASES[name]
    compressed = make()
    blob = _signed(kit, signer, desktop_key, bytes(32) + compressed, format_version)
    assert len(blob) < 8 * MIB
    result = _open_in_child(tmp_path, blob, signer, desktop_key, cap)
    assert result["outcome"].startswith("CorruptSnapshot"), result
    grew = max(0, result["after"] - result["before"])
    figures(f"bomb: {name}: file {len(blob) / MIB:.2f} MiB, peak RSS growth while refusing",
            f"{grew / MIB:.1f} MiB (bound {cap / MIB:.0f} MiB)")
    assert grew < most, (name, grew)


@pytest.mark.slow
def test_the_issue_10_zlib_bomb_at_the_real_bound(kit, signer, desktop_key, tmp_path, figures, zlib_4_3_gb):
    """4.2 MB of signed zlib that inflate to 4.3 GB, against the real 4 GiB bound: refused, and the
    process stays near its starting size (it was 8.45 GB before)."""
    blob = _signed(kit, signer, desktop_key, bytes(32) + zlib_4_3_gb, 1)
    result = _open_in_child(tmp_path, blob, signer, desktop_key, F.MAX_DATABASE_BYTES)
    assert result["outcome"].startswith("CorruptSnapshot") and "larger than" in result["outcome"], result
    grew = max(0, result["after"] - result["before"])
    figures("bomb: issue 10's 4.2 MB zlib file, 4 GiB bound: peak RSS growth while refusing",
            f"{grew / MIB:.1f} MiB (file {len(blob) / MIB:.2f} MiB)")
    assert grew < 64 * MIB


@pytest.mark.parametrize("format_version", [1, 2])
def test_a_database_just_within_the_bound_opens(format_version, kit, signer, desktop_key):
    """Control: the bound refuses what is over it, not what is at it."""
    database = kit.database_for(5)
    inner = envelope.compress(database, format_version)
    blob = _signed(kit, signer, desktop_key, hashlib.sha256(database).digest() + inner, format_version)
    header = envelope.verify(blob, [signer.public])
    assert envelope.decrypt(blob, header, desktop_key, len(database)) == database
    with pytest.raises(Exception, match="larger than"):
        envelope.decrypt(blob, header, desktop_key, len(database) - 1)
