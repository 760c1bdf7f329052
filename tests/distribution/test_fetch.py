"""The HTTP fetcher against a real nginx: conditional GET, HTTPS with a private CA, resumable downloads,
retries, caps, proxies from the environment, and WebDAV PUTs for receipts."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from backup_operator.core.fetch import FetchSettings, HttpClient
from backup_operator.errors import CorruptSnapshot, DownloadFailed, TooLarge


def client(**settings) -> tuple[HttpClient, list[float]]:
    slept: list[float] = []
    return HttpClient(FetchSettings(**{"timeout_s": 5, "retries": 0, **settings}), sleep=slept.append), slept


def test_an_unchanged_file_costs_one_request_and_no_body(nginx):
    (nginx.www / "manifest.bomanifest").write_bytes(b"x" * 500)
    http, _ = client()
    first = http.get(nginx.http + "manifest.bomanifest", cap=4096)
    assert first.status == 200 and first.body == b"x" * 500 and first.etag
    mark = nginx.mark()
    again = http.get(nginx.http + "manifest.bomanifest", cap=4096, etag=first.etag,
                     last_modified=first.last_modified)
    assert again.status == 304 and again.body is None
    (line,) = nginx.log_since(mark)
    assert " 304 0 " in line and first.etag.strip("\"") in line
    # A changed file comes back whole, with its new validator.
    (nginx.www / "manifest.bomanifest").write_bytes(b"y" * 501)
    changed = http.get(nginx.http + "manifest.bomanifest", cap=4096, etag=first.etag,
                       last_modified=first.last_modified)
    assert changed.status == 200 and changed.body == b"y" * 501 and changed.etag != first.etag


def test_https_needs_the_ca_the_desktop_was_told_to_trust(nginx):
    (nginx.www / "f.bin").write_bytes(b"sealed bytes")
    trusting, _ = client(ca_file=str(nginx.ca_file))
    assert trusting.get(nginx.https + "f.bin", cap=100).body == b"sealed bytes"
    stranger, _ = client()
    with pytest.raises(DownloadFailed, match="certificate is not trusted"):
        stranger.get(nginx.https + "f.bin", cap=100)


def test_an_interrupted_download_resumes_where_it_stopped(nginx, tmp_path):
    data = os.urandom(160 * 1024)
    (nginx.www / "big.bosnap").write_bytes(data)
    part = tmp_path / "downloads" / "big.bosnap.part"
    digest = hashlib.sha256(data).digest()
    url = nginx.http + "slow/big.bosnap"  # 32 KiB/s
    # A link too slow for this desktop's floor: cut after ~2 s, what arrived is kept.
    impatient, _ = client(timeout_s=1, min_rate=160 * 1024)
    with pytest.raises(DownloadFailed, match="too slow|broke off"):
        impatient.download(url, size=len(data), sha256=digest, part=part)
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    mark = nginx.mark()
    patient, _ = client(timeout_s=5, min_rate=1024)
    assert patient.download(url, size=len(data), sha256=digest, part=part) == data
    # (nginx may log the cut-off first request only now: look for the 206.)
    (line,) = [x for x in nginx.log_since(mark) if " 206 " in x]
    assert f"range=[bytes={kept}-]" in line and " 206 " in line
    assert int(line.split(" 206 ")[1].split()[0]) == len(data) - kept  # only the rest went over the wire
    assert not part.exists()


def test_a_partial_file_of_another_version_is_not_resumed(nginx, tmp_path):
    old, new = os.urandom(50_000), os.urandom(60_000)
    (nginx.www / "f.bosnap").write_bytes(new)
    part = tmp_path / "f.part"
    part.write_bytes(old[:20_000])
    http, _ = client()
    assert http.download(nginx.http + "f.bosnap", size=len(new), sha256=hashlib.sha256(new).digest(),
                         part=part) == new
    # The server changed the file under a resume (If-Range fails): it sends it whole and we restart.
    (nginx.www / "g.bosnap").write_bytes(new)
    part.write_bytes(old[:20_000])
    part.with_name(part.name + ".json").write_text(
        '{"url": "%s", "size": %d, "sha256": "%s", "etag": "\\"0-0\\""}'
        % (nginx.http + "g.bosnap", len(new), hashlib.sha256(new).hexdigest()))
    mark = nginx.mark()
    assert http.download(nginx.http + "g.bosnap", size=len(new), sha256=hashlib.sha256(new).digest(),
                         part=part) == new
    (line,) = nginx.log_since(mark)
    assert " 200 " in line and "range=[bytes=20000-]" in line


def test_a_file_that_does_not_match_its_manifest_is_refused(nginx, tmp_path):
    (nginx.www / "f.bosnap").write_bytes(b"A" * 1000)
    http, _ = client()
    with pytest.raises(CorruptSnapshot, match="SHA-256"):
        http.download(nginx.http + "f.bosnap", size=1000, sha256=hashlib.sha256(b"B" * 1000).digest(),
                      part=tmp_path / "f.part")
    with pytest.raises(TooLarge):  # the server sends more than the manifest says
        http.download(nginx.http + "f.bosnap", size=999, sha256=hashlib.sha256(b"A" * 999).digest(),
                      part=tmp_path / "g.part")
    with pytest.raises(TooLarge):
        http.get(nginx.http + "f.bosnap", cap=999)
    with pytest.raises(DownloadFailed, match="404"):
        http.get(nginx.http + "nothing-here", cap=999)


def test_a_server_that_is_down_is_retried_with_backoff_then_reported(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    http, slept = client(retries=3, backoff_s=2, max_backoff_s=5)
    with pytest.raises(DownloadFailed, match="gave up after 4 attempts"):
        http.get(f"http://127.0.0.1:{port}/manifest.bomanifest", cap=100)
    assert len(slept) == 3 and http.requests == 4
    assert 1 <= slept[0] <= 2 and 2 <= slept[1] <= 4 and 2.5 <= slept[2] <= 5  # doubling, jittered, capped


def test_a_server_that_never_answers_times_out(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection, never says a word
        http, _ = client(timeout_s=0.5)
        with pytest.raises(DownloadFailed, match="in time|reached"):
            http.get(f"http://127.0.0.1:{listener.getsockname()[1]}/m", cap=100)


def test_proxy_settings_come_from_the_environment(nginx, monkeypatch):
    (nginx.www / "f.bin").write_bytes(b"through the proxy")
    monkeypatch.setenv("http_proxy", nginx.proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    http, _ = client()
    mark = nginx.mark()
    assert http.get(nginx.http + "f.bin", cap=100).body == b"through the proxy"
    ports = sorted(line.split()[0] for line in nginx.log_since(mark, at_least=2))
    assert ports == sorted([str(nginx.proxy_port), str(nginx.http_port)])  # the proxy, then the server
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    mark = nginx.mark()
    HttpClient(FetchSettings(retries=0)).get(nginx.http + "f.bin", cap=100)
    assert [line.split()[0] for line in nginx.log_since(mark)] == [str(nginx.http_port)]


def test_receipts_are_put_over_webdav(nginx):
    http, _ = client(ca_file=str(nginx.ca_file))
    assert http.put(nginx.https + "receipts/desk-a.json", b'{"desktop": "desk-a"}') in (201, 204)
    assert (nginx.www / "receipts" / "desk-a.json").read_bytes() == b'{"desktop": "desk-a"}'
    assert http.put(nginx.https + "receipts/desk-a.json", b'{"desktop": "desk-a", "v": 2}') in (201, 204)
    with pytest.raises(DownloadFailed, match="405"):  # no dav outside /receipts/
        http.put(nginx.https + "manifest.bomanifest", b"forged")
