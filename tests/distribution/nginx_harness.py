"""A real nginx (Debian's package) on loopback for the distribution tests, with a generated config.

One server process per test session serves one published folder (``www``) on three ephemeral ports:

* plain HTTP (a trusted LAN), with ``/receipts/`` accepting WebDAV PUTs (nginx's dav module) and
  ``/slow/`` serving the same folder at a limited rate, to interrupt and resume downloads;
* HTTPS with a certificate from a test CA made here (the desktop is told to trust ``ca.pem``);
* a forward proxy for plain HTTP, adding a header, to prove proxy settings come from the environment.

The access log records status, range and bytes sent per request, so tests see what went over the wire.
Also used by bench/ to serve a real folder. Never a fixed port: each is bound to 0 first.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOG_FORMAT = "$server_port $request_method $uri $status $body_bytes_sent range=[$http_range] inm=[$http_if_none_match]"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_test_ca(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key): a CA that nobody else trusts and a 127.0.0.1 certificate."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Backup Operator test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class Nginx:
    prefix: Path
    www: Path
    http_port: int
    https_port: int
    proxy_port: int
    ca_file: Path
    process: subprocess.Popen

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/"

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def mark(self, *, quiet: float = 0.3, timeout: float = 10.0) -> int:
        """The log's length once it has stopped growing: nginx writes a request's line after the response
        went out, so a mark taken the instant the client has its answer can come before that line (seen on
        a loaded machine: the next ``log_since`` then found the earlier request too)."""
        deadline = time.monotonic() + timeout
        count, since = len(self.log_lines()), time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() < deadline:
            time.sleep(0.02)
            now = len(self.log_lines())
            if now != count:
                count, since = now, time.monotonic()
        return count

    def log_since(self, mark: int, *, at_least: int = 1, timeout: float = 10.0) -> list[str]:
        """Lines logged after ``mark``, waiting (bounded) for ``at_least`` of them: nginx writes a line
        after the response went out, a moment after the client already has it."""
        deadline = time.monotonic() + timeout
        lines = self.log_lines()[mark:]
        while len(lines) < at_least and time.monotonic() < deadline:
            time.sleep(0.02)
            lines = self.log_lines()[mark:]
        time.sleep(0.05)  # and a cut-off request logged late would show up now
        return self.log_lines()[mark:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def _config(prefix: Path, www: Path, ports: tuple[int, int, int], ca: tuple[Path, Path, Path],
            slow_rate: str) -> str:
    http_port, https_port, proxy_port = ports
    _, cert, key = ca
    user = "user root;" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    receipts = f"""
        location /receipts/ {{
            dav_methods PUT;
            create_full_put_path off;
            client_max_body_size 64k;
            dav_access user:rw group:r all:r;
        }}"""
    return f"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 128; }}
http {{
    log_format bo '{LOG_FORMAT}';
    access_log {prefix}/access.log bo;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    types {{ text/plain bomanifest; application/json json; }}
    server {{
        listen 127.0.0.1:{http_port};
        root {www};
        etag on;
        {receipts}
        location /slow/ {{
            alias {www}/;
            limit_rate {slow_rate};
        }}
    }}
    server {{
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {www};
        {receipts}
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_pass http://127.0.0.1:{http_port};
            add_header X-Test-Proxy seen;
        }}
    }}
}}
"""


def start_nginx(root: Path, *, slow_rate: str = "32k") -> Nginx | str:
    """Start nginx serving ``root/www``; return it, or why it could not start (for a skip message)."""
    binary = nginx_binary()
    if binary is None:
        return "nginx is not installed (Debian: apt-get install nginx-light); tests/run.sh installs it"
    prefix, www = root / "nginx", root / "www"
    for folder in (prefix, www, www / "receipts"):
        folder.mkdir(parents=True, exist_ok=True)
    ca = make_test_ca(root / "tls")
    last_error = ""
    for _ in range(3):  # a port taken between bind(0) and nginx's own bind: try other ports
        ports = (_free_port(), _free_port(), _free_port())
        (prefix / "nginx.conf").write_text(_config(prefix, www, ports, ca, slow_rate))
        process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            if all(_listening(p) for p in ports):
                process.stderr.close()
                return Nginx(prefix, www, *ports, ca[0], process)
            time.sleep(0.05)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
        last_error = process.stderr.read().decode(errors="replace")[-500:] if process.stderr else ""
        process.stderr.close()
    return f"nginx did not start: {last_error.strip()}"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
