"""Reading a source file with a time limit and a size cap, whatever kind of file it turns out to be.

A CSV, rota or calendar path is usually a regular file on a disk or a share. It can also be a FIFO that a
script was meant to write into (and never does), a symlink to ``/dev/zero``, or a file that grows for
ever. A plain ``open().read()`` waits for ever on the first and fills the memory with the others, while
holding the exporter lock. So every source file is opened without blocking and read through
``BoundedFile``:

* a wait for data (a FIFO or device with nothing to read yet) lasts at most ``timeout_s``, cut to what
  is left of the export's deadline (exporter.deadline), then the source fails with one sentence;
* more than ``max_bytes`` fails the source, naming the limit;
* a directory or a path that cannot be opened fails with the reason.

Regular files are read as they are (the kernel never makes a reader wait on them, except on a hung
network share, which no user-space timeout can interrupt: the export's deadline covers that case).
This module must never read more than the cap, and never wait without a timeout.
"""

from __future__ import annotations

import io
import os
import select
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

from backup_operator.errors import SourceError

from exporter.deadline import seconds_left, timed_out

__all__ = ["BoundedFile", "open_text", "read_bytes", "fetch", "DEFAULT_TIMEOUT_S", "WHOLE_FETCH_TIMEOUTS"]

DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 1 << 20
# A feed may take this many of its timeouts in all: a server that sends one byte just inside every
# timeout would otherwise hold the export for ever.
WHOLE_FETCH_TIMEOUTS = 4


class BoundedFile(io.RawIOBase):
    """A read-only file whose every wait has a timeout and whose size has a cap."""

    def __init__(self, path: Path, *, where: str, timeout_s: float = DEFAULT_TIMEOUT_S, max_bytes: int):
        self.path = Path(path)
        self.where = where
        self.timeout_s = float(timeout_s)
        self.max_bytes = int(max_bytes)
        self.read_so_far = 0
        try:
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise SourceError(f"{where}: {self.path} does not exist; check the path or the share.") from None
        except IsADirectoryError:
            raise SourceError(f"{where}: {self.path} is a folder, not a file.") from None
        except OSError as exc:
            raise SourceError(f"{where}: {self.path} cannot be opened ({exc.strerror or exc}).") from None
        mode = os.fstat(self.fd).st_mode
        if stat.S_ISDIR(mode):
            os.close(self.fd)
            raise SourceError(f"{where}: {self.path} is a folder, not a file.")
        # Windows has no FIFOs in the file system, and no poll(): everything there is read as a file.
        self.regular = stat.S_ISREG(mode) or os.name == "nt"
        if not self.regular:
            self._poll = select.poll()
            self._poll.register(self.fd, select.POLLIN | select.POLLPRI)

    def readable(self) -> bool:
        return True

    def _wait(self) -> None:
        """Block until there is something to read (or the other end closed), at most the timeout."""
        limit = seconds_left(self.timeout_s)
        if not self._poll.poll(max(0, int(limit * 1000))):
            kind = "the FIFO" if stat.S_ISFIFO(os.fstat(self.fd).st_mode) else "the file"
            raise SourceError(f"{self.where}: " + timed_out(f"{kind} {self.path}", limit))

    def readinto(self, buffer) -> int:
        want = min(len(buffer), _CHUNK, self.max_bytes + 1 - self.read_so_far)
        if want <= 0:
            raise SourceError(f"{self.where}: {self.path} is larger than {self.max_bytes // 2**20} MiB, the limit "
                              "for this source (max_mib); an endless file or a wrong path?")
        if self.regular:
            seconds_left(None)  # stops here once the export is past its deadline
            data = os.read(self.fd, want)
        else:
            while True:
                self._wait()
                try:
                    data = os.read(self.fd, want)
                    break
                except BlockingIOError:
                    continue  # woken, but someone else took the data: wait again
        self.read_so_far += len(data)
        if self.read_so_far > self.max_bytes:
            raise SourceError(f"{self.where}: {self.path} is larger than {self.max_bytes // 2**20} MiB, the limit "
                              "for this source (max_mib); an endless file or a wrong path?")
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def open_text(path: Path, *, where: str, encoding: str, timeout_s: float = DEFAULT_TIMEOUT_S,
              max_bytes: int, newline: str | None = "") -> io.TextIOWrapper:
    raw = BoundedFile(path, where=where, timeout_s=timeout_s, max_bytes=max_bytes)
    return io.TextIOWrapper(io.BufferedReader(raw, buffer_size=_CHUNK), encoding=encoding, newline=newline)


def read_bytes(path: Path, *, where: str, timeout_s: float = DEFAULT_TIMEOUT_S, max_bytes: int) -> bytes:
    with BoundedFile(path, where=where, timeout_s=timeout_s, max_bytes=max_bytes) as raw:
        parts = []
        while True:
            buffer = bytearray(_CHUNK)
            n = raw.readinto(buffer)
            if not n:
                return b"".join(parts)
            parts.append(bytes(buffer[:n]))


def fetch(url: str, *, where: str, timeout_s: float = DEFAULT_TIMEOUT_S, max_bytes: int) -> tuple[bytes, str]:
    """GET an http(s):// (or webcal://, file://) URL within its timeouts and cap; returns (body, origin).

    ``timeout_s`` bounds every wait (connecting, each read); the whole download must finish within
    ``WHOLE_FETCH_TIMEOUTS`` times that, and within the export's deadline. ``origin`` is the URL without
    its query string, for messages (feed URLs carry tokens).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "webcal":
        url = "https" + url[len(parts.scheme):]
        scheme = "https"
    origin = url.split("?")[0]
    if scheme == "file":
        return read_bytes(Path(unquote(parts.path)), where=where, timeout_s=timeout_s, max_bytes=max_bytes), origin
    if scheme not in ("http", "https"):
        raise SourceError(f"{where}: {origin} is not an http(s)://, webcal:// or file:// address.")
    started = time.monotonic()
    whole = seconds_left(timeout_s * WHOLE_FETCH_TIMEOUTS)

    def wait_limit() -> float:
        left = whole - (time.monotonic() - started)
        if left <= 0:
            raise SourceError(f"{where}: " + timed_out(f"the feed {origin} (the whole download)", whole))
        return min(seconds_left(timeout_s), left)

    request = urllib.request.Request(url, headers={"User-Agent": "backup-operator-exporter"})
    try:
        with urllib.request.urlopen(request, timeout=wait_limit()) as response:
            parts_read, total = [], 0
            while True:
                sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
                if sock is not None:
                    sock.settimeout(wait_limit())  # each wait, cut to what is left of the whole
                chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise SourceError(f"{where}: the feed {origin} is larger than {max_bytes // 2**20} MiB; "
                                      "nothing was published.")
                parts_read.append(chunk)
                wait_limit()
            return b"".join(parts_read), origin
    except SourceError:
        raise
    except (TimeoutError, OSError, urllib.error.URLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError) or "timed out" in str(reason):
            if time.monotonic() - started >= whole - 0.1:
                raise SourceError(f"{where}: " + timed_out(f"the feed {origin} (the whole download)", whole)) \
                    from None
            raise SourceError(f"{where}: " + timed_out(f"the feed {origin}", min(timeout_s, whole))) from None
        raise SourceError(f"{where}: the feed {origin} cannot be fetched ({reason}); nothing was "
                          "published.") from None
