"""Snapshot receipts read back from the inboxes: untrusted input, checked before anything uses them.

A desktop leaves ``receipts/<name>.json`` in its inbox after each sync, signed with its enrolment key
(purpose "receipt", docs/FORMAT.md §15.5). Anyone who can write to a share can write there too, so a
receipt is only ever *shown*: it never steers a version number (those come from the exporter's own
state alone). Each receipt is

* bounded: at most ``MAX_RECEIPT_BYTES``, read without following a link, from a plain file only;
* validated: a JSON object whose version is a whole number from 1 to 2^53 and whose times are times;
* authenticated: signed by the enrolled desktop whose key it names. Anything else (unsigned, signed by a
  key IT did not enrol, altered, or claiming a version this exporter never published) is kept as
  *unverified*, and ``status`` says so instead of counting it.

This module must never let a receipt change anything but what ``status`` shows.
"""

from __future__ import annotations

from backup_operator.errors import BackupOperatorError
from backup_operator.snapshot.keys import DesktopPublicKey

from exporter.journal import sender_of
from exporter.publish import Receipt
from exporter.recipients import Recipient
from exporter.state import ReceiptRecord

__all__ = ["SIGNED", "UNSIGNED", "BAD_SIGNATURE", "AHEAD", "verify_receipt", "verify_receipts", "mine"]

SIGNED = "signed"
UNSIGNED = "unsigned"
BAD_SIGNATURE = "bad signature"
AHEAD = "ahead of the exporter"


def _same_desktop(key_text: str, recipient: Recipient) -> bool:
    try:
        return DesktopPublicKey.from_text(key_text).raw == recipient.key.raw
    except BackupOperatorError:
        return False


def verify_receipt(receipt: Receipt, recipients: list[Recipient], *, latest: int, read_at: str) -> ReceiptRecord:
    """The receipt as the state keeps it, with how far it can be trusted (``ReceiptRecord.verified``).

    Only a receipt signed by an enrolled desktop's key, for a version this exporter has published, is
    ``signed``; it is then filed under that desktop's enrolled key and name, whatever the file says.
    Everything else is filed as ``unverified:<name the file gives>`` and never counted as a confirmation.
    """
    trust, desktop, ident = UNSIGNED, receipt.desktop, ""
    if receipt.signed is not None:
        key_text, message, signature = receipt.signed
        try:
            sender = sender_of(key_text, message, signature, recipients, "receipt")
        except BackupOperatorError:
            trust = BAD_SIGNATURE
        else:
            trust, desktop, ident = SIGNED, sender.name, sender.key.to_text()
            if receipt.snapshot_version > latest:
                trust = AHEAD  # signed, but for a version this exporter never gave out: its state was lost?
    if trust != SIGNED:
        ident = f"unverified:{receipt.desktop}"
    return ReceiptRecord(ident, desktop, receipt.destination, receipt.snapshot_version, receipt.installed_at,
                         read_at, trust)


def verify_receipts(receipts: list[Receipt], recipients: list[Recipient], *, latest: int,
                    read_at: str) -> list[ReceiptRecord]:
    return [verify_receipt(r, recipients, latest=latest, read_at=read_at) for r in receipts]


def mine(records: list[ReceiptRecord], recipient: Recipient) -> tuple[list[ReceiptRecord], list[ReceiptRecord]]:
    """(verified receipts of this desktop, unverified receipts that give its name)."""
    signed = [r for r in records if r.verified == SIGNED and _same_desktop(r.public_key, recipient)]
    claims = [r for r in records if r.verified != SIGNED and r.desktop == recipient.name]
    return signed, claims
