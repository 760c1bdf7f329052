"""Enrolled desktops (recipients): who each snapshot is sealed to, and where each one's inbox is.

Kept in ``recipients.toml`` in the exporter home, written only by ``recipients add`` and
``recipients remove`` (IT may edit it by hand; it is plain TOML). Removing a recipient is how a desktop
is revoked: from the next snapshot on, nothing is sealed to its key.

An inbox is a folder path (local, mounted share or Windows UNC path) or an ``sftp://user@host:port/path``
URL whose credentials come from the config's [sftp] section or a matching [[destinations]] entry.

This module must never hold private keys, and must never write a half-finished recipients file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import tomli_w

from backup_operator.core.model import format_utc
from backup_operator.errors import ConfigError
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot.keys import DesktopPublicKey

__all__ = ["Recipient", "load_recipients", "save_recipients", "add_recipient", "remove_recipient"]


@dataclass
class Recipient:
    name: str
    key: DesktopPublicKey
    inboxes: list[str] = field(default_factory=list)
    added_at: str = ""

    def to_toml(self) -> dict:
        return {"name": self.name, "key": self.key.to_text(), "inboxes": list(self.inboxes),
                "added_at": self.added_at}


# The last file parsed, by path: (its text, its recipients). An export reads the file twice (sealing and
# the health check after the run), and parsing 500 desktops' TOML costs a tenth of a second each time.
_parsed: dict[str, tuple[str, list[Recipient]]] = {}


def load_recipients(path: Path) -> list[Recipient]:
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); restore it or add the desktops again.") from None
    key = str(path)
    cached = _parsed.get(key)
    if cached is None or cached[0] != text:  # the same text parses to the same recipients
        cached = _parsed[key] = (text, _parse(path, text))
    return [Recipient(r.name, r.key, list(r.inboxes), r.added_at) for r in cached[1]]


def _parse(path: Path, text: str) -> list[Recipient]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); restore it or add the desktops again.") from None
    out = []
    for n, entry in enumerate(doc.get("recipients", []), 1):
        try:
            out.append(Recipient(str(entry["name"]), DesktopPublicKey.from_text(entry["key"]),
                                 [str(i) for i in entry.get("inboxes", [])], str(entry.get("added_at", ""))))
        except KeyError as exc:
            raise ConfigError(f"{path}: recipient {n} has no {exc.args[0]}.") from None
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"{path}: recipient {n} ({entry.get('name', '?')}): {exc}") from None
    return out


def save_recipients(path: Path, recipients: list[Recipient]) -> None:
    doc = {"recipients": [r.to_toml() for r in recipients]}
    text = ("# Enrolled desktops. Written by 'backup-operator-export recipients add/remove'.\n"
            "# Removing an entry revokes that desktop from the next snapshot on.\n\n" + tomli_w.dumps(doc))
    atomic_write(path, text.encode("utf-8"), mode=0o644)


def add_recipient(path: Path, name: str, key_text: str, inboxes: list[str], *,
                  replace: bool = False) -> Recipient:
    name = name.strip()
    if not name:
        raise ConfigError("A recipient needs a name, like the desktop's host name.")
    key = DesktopPublicKey.from_text(key_text)
    recipients = load_recipients(path)
    for existing in recipients:
        if existing.name == name and not replace:
            raise ConfigError(f"A desktop named {name!r} is already enrolled; remove it first or use "
                              "--replace to give it a new key.")
        if existing.key.raw == key.raw and existing.name != name:
            raise ConfigError(f"That key is already enrolled as {existing.name!r}.")
    recipients = [r for r in recipients if r.name != name]
    recipient = Recipient(name, key, list(dict.fromkeys(inboxes)),
                          format_utc(datetime.now(timezone.utc)))
    recipients.append(recipient)
    save_recipients(path, recipients)
    return recipient


def remove_recipient(path: Path, name: str) -> Recipient:
    recipients = load_recipients(path)
    for recipient in recipients:
        if recipient.name == name:
            save_recipients(path, [r for r in recipients if r.name != name])
            return recipient
    known = ", ".join(r.name for r in recipients) or "none"
    raise ConfigError(f"No desktop named {name!r} is enrolled (enrolled: {known}).")
