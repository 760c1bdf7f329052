"""A large ``bytearray`` to be filled by the caller, allocated without holding the GIL for long.

``bytearray(n)`` zero-fills its memory while it holds the GIL: for the 50 MB database of a 100,000-
listing snapshot that is one 30-120 ms stretch (every page is faulted in by the fill) during which no
other thread of the process runs — the window's typing stalled that long while a new snapshot
installed in the background. Decryption and decompression overwrite every byte anyway, and they
release the GIL while they do, so the page faults move there.

``unfilled(n)`` returns a ``bytearray`` of length ``n`` whose contents are whatever the allocator
gave (fresh pages on Linux: zeros). The caller must write every byte it later reads, or trim the rest
(``del buf[filled:]``) before the buffer leaves its hands. Where CPython's C API cannot be reached
through ``ctypes`` it falls back to ``bytearray(n)``.

This module must never import anything outside the standard library.
"""

from __future__ import annotations

__all__ = ["unfilled", "SMALL"]

SMALL = 1 << 20  # below this, zero-filling is quick: a plain bytearray

try:
    import ctypes

    _resize = ctypes.pythonapi.PyByteArray_Resize
    _resize.argtypes = (ctypes.py_object, ctypes.c_ssize_t)
    _resize.restype = ctypes.c_int
except (ImportError, AttributeError, OSError):  # pragma: no cover - not CPython, or no ctypes
    _resize = None


def unfilled(n: int) -> bytearray:
    """A ``bytearray`` of length ``n`` that the caller fills (see the module's docstring)."""
    if n < SMALL or _resize is None:
        return bytearray(n)
    buffer = bytearray()
    # PyByteArray_Resize only reallocates: no byte is written, so no page is touched here. It raises
    # MemoryError (through ctypes' py_object handling of the error indicator) when n cannot be had.
    if _resize(buffer, n) != 0:  # pragma: no cover - the exception is raised by ctypes first
        raise MemoryError(f"cannot allocate {n} bytes")
    return buffer
