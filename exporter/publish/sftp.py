"""An SFTP destination (paramiko): a desktop's or a kit server's inbox reached over SSH.

The file is uploaded under a temporary name (``.tmp-…``, which desktops ignore), flushed and fsynced
where the server supports ``fsync@openssh.com``, then renamed over the final name with
``posix-rename@openssh.com`` (atomic on OpenSSH), so a desktop never sees half a file.

Host keys are always checked: from ``host_keys`` lines in the config ("ssh-ed25519 AAAA…"), a
``known_hosts`` file, or the system's known hosts; an unknown host is refused, never trusted on first
use. Authentication: ``key_file`` (passphrase from ``key_passphrase_env``), ``password_env``, or the
SSH agent.

This module must never log passwords or key material, and never accept an unknown host key.
"""

from __future__ import annotations

import base64
import os
import posixpath
import secrets
import stat

import paramiko

from backup_operator.errors import ConfigError
from backup_operator.fsutil import TEMP_PREFIX

from exporter.config import DestinationConfig
from backup_operator.errors import PublishFailed
from exporter.publish import MAX_RECEIPT_BYTES, Receipt, parse_receipt, prunable, version_of

__all__ = ["SftpDestination"]

_CMD_EXTENDED = 200  # SSH_FXP_EXTENDED


def _host_key_entry(line: str, where: str) -> tuple[str, paramiko.PKey]:
    parts = line.split()
    if len(parts) < 2:
        raise ConfigError(f"{where}: host key {line!r} should look like 'ssh-ed25519 AAAA…'.")
    kind, data = parts[0], parts[1]
    try:
        key = paramiko.PKey.from_type_string(kind, base64.b64decode(data))
    except Exception:
        raise ConfigError(f"{where}: host key {line[:40]!r}… is not a valid SSH public key.") from None
    return kind, key


def _load_private_key(path, passphrase: str | None, where: str) -> paramiko.PKey:
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(str(path), password=passphrase)
        except FileNotFoundError:
            raise ConfigError(f"{where}: the SSH key file {path} does not exist.") from None
        except paramiko.PasswordRequiredException:
            raise ConfigError(f"{where}: the SSH key file {path} needs a passphrase (key_passphrase_env).") \
                from None
        except (paramiko.SSHException, ValueError):
            continue
    raise ConfigError(f"{where}: the SSH key file {path} cannot be read (wrong passphrase or unsupported type).")


class SftpDestination:
    def __init__(self, dest: DestinationConfig, timeout_s: float):
        self.label = dest.label
        self.path = dest.path.rstrip("/") or "/"
        where = f"destination {dest.name!r}"
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        host_id = dest.host if dest.port == 22 else f"[{dest.host}]:{dest.port}"
        for line in dest.host_keys:
            kind, key = _host_key_entry(line, where)
            client.get_host_keys().add(host_id, kind, key)
        if dest.known_hosts:
            try:
                client.load_host_keys(str(dest.known_hosts))
            except OSError as exc:
                raise ConfigError(f"{where}: known_hosts {dest.known_hosts} cannot be read ({exc}).") from None
        if not dest.host_keys and not dest.known_hosts:
            try:
                client.load_system_host_keys()
            except OSError:
                pass
        pkey = None
        if dest.key_file:
            passphrase = os.environ.get(dest.key_passphrase_env) if dest.key_passphrase_env else None
            pkey = _load_private_key(dest.key_file, passphrase, where)
        password = os.environ.get(dest.password_env) if dest.password_env else None
        if dest.password_env and password is None:
            raise ConfigError(f"{where}: the environment variable {dest.password_env} is not set.")
        try:
            client.connect(dest.host, port=dest.port, username=dest.username, pkey=pkey, password=password,
                           timeout=timeout_s, banner_timeout=timeout_s, auth_timeout=timeout_s,
                           allow_agent=pkey is None and password is None,
                           look_for_keys=pkey is None and password is None)
        except paramiko.BadHostKeyException:
            client.close()
            raise PublishFailed(f"{self.label}: the server's host key does not match the one configured; "
                                "refusing to connect (possible interception).") from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise ConfigError(f"{self.label}: the server's host key is unknown; add it to host_keys or "
                                  "known_hosts for this destination (the exporter never trusts on first use).") \
                    from None
            raise PublishFailed(f"{self.label}: SSH failed ({exc}).") from None
        except OSError as exc:
            client.close()
            raise PublishFailed(f"{self.label}: cannot reach {dest.host}:{dest.port} "
                                f"({exc.strerror or exc}).") from None
        self._client = client
        self._sftp = client.open_sftp()
        self._sftp.get_channel().settimeout(timeout_s)
        try:
            mode = self._sftp.stat(self.path).st_mode
        except FileNotFoundError:
            self.close()
            raise PublishFailed(f"{self.label}: the inbox folder {self.path} does not exist on "
                                f"{dest.host}.") from None
        if mode is not None and not stat.S_ISDIR(mode):
            self.close()
            raise PublishFailed(f"{self.label}: {self.path} on {dest.host} is not a folder.")

    def _fsync(self, handle) -> None:
        """fsync@openssh.com: the bytes are on the server's disk before the rename makes them visible."""
        try:
            self._sftp._request(_CMD_EXTENDED, "fsync@openssh.com", handle.handle)
        except (IOError, paramiko.SSHException):
            pass  # a server without the extension: the rename is still atomic

    def write_snapshot(self, filename: str, data: bytes) -> None:
        final = posixpath.join(self.path, filename)
        tmp = posixpath.join(self.path, f"{TEMP_PREFIX}{secrets.token_hex(6)}-{filename}")
        try:
            with self._sftp.open(tmp, "wb") as handle:
                handle.set_pipelined(True)
                view = memoryview(data)
                for start in range(0, len(view), 1 << 20):
                    handle.write(view[start:start + (1 << 20)])
                handle.flush()
                self._fsync(handle)
            self._sftp.chmod(tmp, 0o644)
            try:
                self._sftp.posix_rename(tmp, final)
            except IOError:
                # Servers without posix-rename: plain SFTP rename refuses to overwrite, so make room.
                try:
                    self._sftp.remove(final)
                except IOError:
                    pass
                self._sftp.rename(tmp, final)
        except (IOError, paramiko.SSHException) as exc:
            try:
                self._sftp.remove(tmp)
            except Exception:
                pass
            raise PublishFailed(f"{self.label}: writing {filename} failed ({exc or type(exc).__name__}; is "
                                "the disk full?); the previous snapshot "
                                "stays in that inbox.") from None

    def snapshot_versions(self) -> list[int]:
        return sorted(v for v in (version_of(n) for n in self._sftp.listdir(self.path)) if v is not None)

    def read_snapshot(self, version: int, cap: int) -> bytes | None:
        """A plain file named for ``version`` (any width), at most ``cap`` bytes (lstat: no link followed)."""
        for attrs in self._sftp.listdir_attr(self.path):
            if version_of(attrs.filename) == version and stat.S_ISREG(attrs.st_mode or 0) \
                    and (attrs.st_size or 0) <= cap:
                with self._sftp.open(posixpath.join(self.path, attrs.filename), "rb") as handle:
                    data = handle.read(cap + 1)
                if len(data) <= cap:
                    return data
        return None

    def prune(self, keep: int, protect: str) -> list[str]:
        names = self._sftp.listdir(self.path)
        for name in names:
            if name.startswith(TEMP_PREFIX):  # left by an interrupted upload
                try:
                    self._sftp.remove(posixpath.join(self.path, name))
                except IOError:
                    pass
        removed = []
        for name in prunable(names, keep, protect):
            try:
                self._sftp.remove(posixpath.join(self.path, name))
                removed.append(name)
            except IOError:
                pass
        return removed

    def read_receipts(self) -> list[Receipt]:
        """Every receipt in ``receipts/``: plain files only (lstat: no link is followed), each bounded."""
        folder = posixpath.join(self.path, "receipts")
        try:
            if not stat.S_ISDIR(self._sftp.lstat(folder).st_mode or 0):
                return []
            entries = [a for a in self._sftp.listdir_attr(folder) if a.filename.endswith(".json")]
        except IOError:
            return []
        out = []
        for attrs in sorted(entries, key=lambda a: a.filename)[:100_000]:
            if not stat.S_ISREG(attrs.st_mode or 0) or (attrs.st_size or 0) > MAX_RECEIPT_BYTES:
                continue
            try:
                with self._sftp.open(posixpath.join(folder, attrs.filename), "rb") as handle:
                    data = handle.read(MAX_RECEIPT_BYTES + 1)
            except IOError:
                continue
            receipt = parse_receipt(data, self.label) if len(data) <= MAX_RECEIPT_BYTES else None
            if receipt is not None:
                out.append(receipt)
        return out

    def close(self) -> None:
        for thing in (getattr(self, "_sftp", None), getattr(self, "_client", None)):
            if thing is not None:
                try:
                    thing.close()
                except Exception:
                    pass
