"""HTTP(S) for pulling snapshots: conditional GET, resumable downloads, timeouts, retries, caps, proxies.

The standard library's ``urllib.request`` is enough and brings what hospitals need for free: proxy
settings from the environment (``https_proxy``, ``http_proxy``, ``no_proxy``; on Windows, the system's
proxy settings), TLS with the system's CA store or a CA file IT names, and redirects. A third-party
client would add a dependency to every desktop for nothing we use.

Rules kept here:

* every network wait has a timeout (``timeout_s`` for each connect and read) and every request a total
  deadline (``timeout_s`` plus the time the body takes at ``min_rate`` bytes a second), so a server that
  drips one byte at a time cannot hold a desktop;
* every body has a cap: a manifest at most 1 MiB, a file exactly the size its signed manifest gives;
* a download that breaks off is kept as ``<name>.part`` (ciphertext, as served) and resumed with a
  ``Range`` request guarded by ``If-Range``, so a changed file is fetched again from the start;
* failures that time can fix (connection refused or reset, timeouts, 408, 429, 5xx) are retried with
  exponential backoff and jitter, honouring ``Retry-After`` up to the backoff cap; others are not;
* a redirect may not leave https for http.

This module must never decide whether bytes are trustworthy (the manifest's hash and the envelope's
signature do), never write anything but ciphertext and its bookkeeping, and never import Qt.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import random
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from backup_operator import __version__
from backup_operator.errors import ConfigError, CorruptSnapshot, DownloadFailed, TooLarge

__all__ = ["FetchSettings", "HttpClient", "Response", "check_inbox_url", "join", "cache_folder"]

_PIECE = 64 * 1024
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def check_inbox_url(url: str) -> str:
    """An http(s) inbox address as stored: scheme and host present, ending in '/'."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an inbox address like https://server/backup-operator/.")
    if parts.query or parts.fragment:
        raise ConfigError(f"The inbox address {url!r} must not have a '?' or '#' part.")
    return url if url.endswith("/") else url + "/"


@dataclass
class FetchSettings:
    timeout_s: float = 20.0  # each connect and each read
    retries: int = 3  # after the first attempt
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    min_rate: int = 8 * 1024  # bytes a second a download may average before it is cut (and resumed later)
    ca_file: str | None = None  # trust this CA bundle instead of the system's (an internal CA)


@dataclass
class Response:
    status: int  # 200, or 304 when the conditional GET found nothing new
    body: bytes | None
    etag: str | None
    last_modified: str | None


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(req.full_url).scheme == "https" and urlsplit(newurl).scheme != "https":
            raise DownloadFailed(f"{req.full_url} redirects to {newurl}, which is not https; refused.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
        return max(0.0, moment.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class HttpClient:
    """One desktop's HTTP client for one inbox's settings; ``sleep`` and ``clock`` are for tests."""

    def __init__(self, settings: FetchSettings | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings or FetchSettings()
        self._sleep, self._clock = sleep, clock
        context = ssl.create_default_context(cafile=self.settings.ca_file or None)
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(),  # from the environment (and the registry on Windows)
            urllib.request.HTTPSHandler(context=context), _NoDowngrade())
        self._opener.addheaders = [("User-Agent", f"backup-operator/{__version__}")]
        self.requests = 0  # how many requests went out (the bench and tests count them)
        self.bytes_received = 0

    # --- one request ---------------------------------------------------------------------------

    def _open(self, request: urllib.request.Request):
        self.requests += 1
        try:
            return self._opener.open(request, timeout=self.settings.timeout_s)
        except urllib.error.HTTPError as exc:
            if exc.code in (304, 416):
                return exc  # callers handle "not modified" and "range not satisfiable"
            retry_after = _retry_after(exc.headers.get("Retry-After")) if exc.headers else None
            exc.close()
            if exc.code in _RETRY_STATUS:
                raise _Retryable(f"{request.full_url} answered {exc.code} {exc.reason}", retry_after) from None
            raise DownloadFailed(f"{request.full_url} answered {exc.code} {exc.reason}; check the inbox address "
                                 "and the web server.") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise DownloadFailed(f"{request.full_url}: the server's certificate is not trusted "
                                     f"({reason.verify_message}); IT can name the hospital's CA with "
                                     "'backup-operator inbox add URL --ca-file FILE'.") from None
            if isinstance(reason, ssl.SSLError):
                raise DownloadFailed(f"{request.full_url}: TLS failed ({reason}).") from None
            raise _Retryable(f"{request.full_url} cannot be reached ({reason})") from None
        except (TimeoutError, socket.timeout, ConnectionError, OSError) as exc:
            raise _Retryable(f"{request.full_url} did not answer in time ({exc})") from None

    def _read(self, response, cap: int, deadline: float, sink: Callable[[bytes], None]) -> int:
        """Copy the body to ``sink``; at most ``cap`` bytes, and not past ``deadline``."""
        total = 0
        try:
            while True:
                if self._clock() > deadline:
                    raise _Retryable(f"{response.geturl()} is too slow (under {self.settings.min_rate} bytes/s); "
                                     "what arrived is kept and the download resumes")
                # read1: whatever one socket read brings, so a stall loses nothing already received.
                piece = response.read1(min(_PIECE, cap + 1 - total))
                if not piece:
                    return total
                total += len(piece)
                self.bytes_received += len(piece)
                if total > cap:
                    raise TooLarge(f"{response.geturl()} sent more than the {cap:,} bytes expected; refused.")
                sink(piece)
        except (TimeoutError, socket.timeout, ConnectionError, OSError) as exc:
            raise _Retryable(f"{response.geturl()} broke off ({exc}); what arrived is kept") from None

    def _deadline(self, size: int) -> float:
        return self._clock() + self.settings.timeout_s + size / max(1, self.settings.min_rate)

    def _with_retries(self, what: Callable[[], object]):
        attempt = 0
        while True:
            try:
                return what()
            except _Retryable as exc:
                if attempt >= self.settings.retries:
                    failed = DownloadFailed(f"{exc}; gave up after {attempt + 1} attempts. The installed "
                                            "snapshot stays in use.")
                    failed.outage = True  # time may fix it (down, slow, overloaded), unlike a 404
                    raise failed from None
                delay = min(self.settings.max_backoff_s, self.settings.backoff_s * 2 ** attempt)
                delay = delay * (0.5 + random.random() / 2)  # jitter: 10,000 desktops must not retry in step
                if exc.retry_after is not None:
                    delay = min(self.settings.max_backoff_s, max(delay, exc.retry_after))
                self._sleep(delay)
                attempt += 1

    # --- what the inbox code asks --------------------------------------------------------------

    def get(self, url: str, *, cap: int, etag: str | None = None, last_modified: str | None = None) -> Response:
        """A small file, whole, with a conditional GET when ``etag``/``last_modified`` are given."""

        def once() -> Response:
            request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
            if etag:
                request.add_header("If-None-Match", etag)
            if last_modified:
                request.add_header("If-Modified-Since", last_modified)
            response = self._open(request)
            with response:
                if response.status == 304:
                    return Response(304, None, etag, last_modified)
                if response.status != 200:
                    raise DownloadFailed(f"{url} answered {response.status}.")
                parts: list[bytes] = []
                self._read(response, cap, self._deadline(cap), parts.append)
                return Response(200, b"".join(parts), response.headers.get("ETag"),
                                response.headers.get("Last-Modified"))

        return self._with_retries(once)

    def download(self, url: str, *, size: int, sha256: bytes, part: Path) -> bytes:
        """A file of known size and hash, resuming ``part`` where an earlier attempt stopped.

        Returns the whole file once its size and SHA-256 match; the part file is then removed.
        """
        meta_path = part.with_name(part.name + ".json")
        expected = {"url": url, "size": size, "sha256": sha256.hex()}

        def state() -> dict:
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                if {k: meta.get(k) for k in expected} == expected and part.is_file():
                    return meta
            except (OSError, ValueError):
                pass
            for leftover in (part, meta_path):
                leftover.unlink(missing_ok=True)
            return dict(expected)

        def once() -> bytes:
            meta = state()
            have = part.stat().st_size if part.is_file() else 0
            if have > size:
                part.unlink()
                have = 0
            request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
            if 0 < have < size:
                request.add_header("Range", f"bytes={have}-")
                validator = meta.get("etag") or meta.get("last_modified")
                if validator:
                    request.add_header("If-Range", validator)
            if have < size:
                response = self._open(request)
                with response:
                    if response.status == 416:
                        part.unlink(missing_ok=True)
                        raise _Retryable(f"{url}: the server refused to resume; starting again")
                    if response.status == 206:
                        match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
                        if not match or int(match.group(1)) != have or \
                                (match.group(3) != "*" and int(match.group(3)) != size):
                            part.unlink(missing_ok=True)
                            raise _Retryable(f"{url}: the server resumed at the wrong place; starting again")
                        mode = "ab"
                    elif response.status == 200:
                        have, mode = 0, "wb"  # no range support, or the file changed: from the start
                    else:
                        raise DownloadFailed(f"{url} answered {response.status}.")
                    meta.update(etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified"))
                    part.parent.mkdir(parents=True, exist_ok=True)
                    meta_path.write_text(json.dumps(meta), encoding="utf-8")
                    with open(part, mode) as out:
                        self._read(response, size - have, self._deadline(size - have), out.write)
            data = part.read_bytes()
            if len(data) != size or hashlib.sha256(data).digest() != sha256:
                part.unlink(missing_ok=True)
                meta_path.unlink(missing_ok=True)
                if len(data) < size:
                    raise _Retryable(f"{url} ended early ({len(data):,} of {size:,} bytes)")
                raise CorruptSnapshot(f"{url} does not match the size and SHA-256 its signed manifest gives; "
                                      "it was altered on the server or in transit, and was not installed.")
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            return data

        return self._with_retries(once)

    def put(self, url: str, data: bytes, content_type: str = "application/json") -> int:
        """A WebDAV-style PUT (a receipt); returns the status. One attempt: receipts are best effort."""
        request = urllib.request.Request(url, data=data, method="PUT",
                                         headers={"Content-Type": content_type})
        try:
            response = self._open(request)
        except _Retryable as exc:
            raise DownloadFailed(str(exc)) from None
        with response:
            return response.status


def join(base: str, name: str) -> str:
    """A file beside the manifest (names are checked plain by the manifest parser)."""
    return urljoin(base, name)


def cache_folder(root: Path, url: str) -> Path:
    """Where one inbox's partial downloads and manifest validators live, inside the desktop home."""
    return root / hashlib.sha256(url.encode()).hexdigest()[:16]

