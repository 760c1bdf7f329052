"""Keys: the exporter's Ed25519 signing key, each desktop's X25519 key pair, and how they are kept.

Public keys travel as one line of text that IT can paste or read aloud, with a checksum so that a
mistyped key is refused instead of silently enrolling nobody::

    bo-desktop-<base32 of 32 key bytes + 4 checksum bytes>
    bo-signer-<base32 of 32 key bytes + 4 checksum bytes>

A desktop's private key is never written in the clear: it lives in the OS key store (keyring) or in a
key file sealed with a passphrase (scrypt, then ChaCha20-Poly1305) for portable kits.

This module and envelope.py are the only callers of ``cryptography``. It must never log key material.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from backup_operator.errors import BadKeyText, KeyStoreUnavailable, NoDesktopKey, WrongPassphrase
from backup_operator.snapshot import format as F

__all__ = [
    "SignerKey",
    "SignerPublicKey",
    "DesktopKey",
    "DesktopPublicKey",
    "seal_key_file",
    "open_key_file",
    "keyring_available",
    "keyring_save",
    "keyring_load",
    "keyring_delete",
]


def _encode(prefix: str, raw: bytes) -> str:
    check = hashlib.sha256(prefix.encode() + raw).digest()[: F.KEY_CHECKSUM_BYTES]
    return prefix + base64.b32encode(raw + check).decode().rstrip("=").lower()


def _decode(prefix: str, text: str, what: str, sizes: tuple[int, ...] = (32,)) -> bytes:
    text = "".join(text.split())
    if not text.lower().startswith(prefix):
        other = F.SIGNER_PUBLIC_PREFIX if prefix == F.DESKTOP_PUBLIC_PREFIX else F.DESKTOP_PUBLIC_PREFIX
        hint = f" (that is a {'signer' if other == F.SIGNER_PUBLIC_PREFIX else 'desktop'} key)" \
            if text.lower().startswith(other) else ""
        raise BadKeyText(f"This is not a {what}: it should start with '{prefix}'{hint}.")
    body = text[len(prefix):].upper()
    try:
        data = base64.b32decode(body + "=" * (-len(body) % 8))
    except (ValueError, base64.binascii.Error):
        raise BadKeyText(f"The {what} has characters that do not belong in a key; copy it again.") from None
    raw, check = data[:-F.KEY_CHECKSUM_BYTES], data[-F.KEY_CHECKSUM_BYTES:]
    # The last base32 character also carries two unused bits: a typo there decodes to the same bytes,
    # so compare the whole text with the one true spelling instead of trusting the decoder alone.
    if len(raw) not in sizes or hashlib.sha256(prefix.encode() + raw).digest()[: F.KEY_CHECKSUM_BYTES] != check \
            or _encode(prefix, raw) != prefix + body.lower():
        raise BadKeyText(f"The {what} is mistyped or cut short (its checksum does not match); copy it again.")
    return raw


@dataclass(frozen=True)
class SignerPublicKey:
    raw: bytes

    @classmethod
    def from_text(cls, text: str) -> "SignerPublicKey":
        return cls(_decode(F.SIGNER_PUBLIC_PREFIX, text, "exporter signing key"))

    def to_text(self) -> str:
        return _encode(F.SIGNER_PUBLIC_PREFIX, self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        return self.to_text()


class SignerKey:
    """The exporter's Ed25519 signing key."""

    def __init__(self, private: Ed25519PrivateKey):
        self._private = private

    @classmethod
    def generate(cls) -> "SignerKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> "SignerKey":
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None = None) -> "SignerKey":
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except TypeError as exc:
            raise WrongPassphrase("The signing key file needs its passphrase (or was given one it "
                                  "does not have).") from exc
        except ValueError as exc:
            raise WrongPassphrase("The signing key file cannot be opened: wrong passphrase or "
                                  "not a key file.") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise BadKeyText("The signing key file does not hold an Ed25519 key.")
        return cls(key)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    @property
    def public(self) -> SignerPublicKey:
        return SignerPublicKey(self._private.public_key().public_bytes_raw())

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


@dataclass(frozen=True)
class DesktopPublicKey:
    """A desktop's public keys: X25519 ``raw`` (snapshots are sealed to it) and, when the desktop was
    enrolled with one, Ed25519 ``signing`` (it checks what the desktop signs)."""

    raw: bytes
    signing: bytes | None = None

    @classmethod
    def from_text(cls, text: str) -> "DesktopPublicKey":
        both = _decode(F.DESKTOP_PUBLIC_PREFIX, text, "desktop public key", (32, 64))
        return cls(both[:32], both[32:] or None)

    def to_text(self) -> str:
        return _encode(F.DESKTOP_PUBLIC_PREFIX, self.raw + (self.signing or b""))

    @property
    def can_sign(self) -> bool:
        """True when this key text carries the desktop's Ed25519 key (enrolled since issue 10)."""
        return self.signing is not None

    def verify(self, purpose: str, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this desktop's over ``message`` for ``purpose`` (False if it cannot sign)."""
        if self.signing is None or len(signature) != F.SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.signing).verify(signature, _context(purpose) + message)
        except (InvalidSignature, ValueError):
            return False
        return True

    @property
    def recipient_id(self) -> str:
        """A short, stable name for this key inside a snapshot header (not secret, not a key)."""
        return hashlib.sha256(b"backup-operator/v1 recipient\n" + self.raw).hexdigest()[
            : 2 * F.RECIPIENT_ID_BYTES]

    def _x25519(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self.raw)

    def __str__(self) -> str:
        return self.to_text()


def _context(purpose: str) -> bytes:
    try:
        return F.DESKTOP_SIGNING_CONTEXTS[purpose]
    except KeyError:
        raise ValueError(f"no desktop signature is defined for {purpose!r}") from None


class DesktopKey:
    """A desktop's private keys: X25519 unwraps the file key of snapshots sealed to it; Ed25519 (when the
    desktop has one) signs what it sends back, each signature bound to its purpose."""

    def __init__(self, private: X25519PrivateKey, signing: Ed25519PrivateKey | None = None):
        self._private = private
        self._signing = signing

    @classmethod
    def generate(cls) -> "DesktopKey":
        return cls(X25519PrivateKey.generate(), Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> "DesktopKey":
        """32 bytes (X25519 only, enrolled before desktops signed) or 64 (X25519 || Ed25519 seed)."""
        if len(raw) not in (32, 64):
            raise ValueError("a desktop private key is 32 or 64 bytes")
        return cls(X25519PrivateKey.from_private_bytes(raw[:32]),
                   Ed25519PrivateKey.from_private_bytes(raw[32:]) if len(raw) == 64 else None)

    def raw(self) -> bytes:
        signing = self._signing.private_bytes_raw() if self._signing is not None else b""
        return self._private.private_bytes_raw() + signing

    @property
    def can_sign(self) -> bool:
        return self._signing is not None

    def with_signing_key(self) -> "DesktopKey":
        """The same X25519 key with a new Ed25519 key (``enroll --upgrade`` for a key that has none)."""
        return self if self._signing is not None else DesktopKey(self._private, Ed25519PrivateKey.generate())

    def sign(self, purpose: str, message: bytes) -> bytes:
        if self._signing is None:
            raise NoDesktopKey("This desktop has no signing key yet, so it cannot sign what it sends back; "
                               "run 'backup-operator enroll --upgrade' and give IT the new line it prints.")
        return self._signing.sign(_context(purpose) + message)

    @property
    def public(self) -> DesktopPublicKey:
        signing = self._signing.public_key().public_bytes_raw() if self._signing is not None else None
        return DesktopPublicKey(self._private.public_key().public_bytes_raw(), signing)

    def _x25519(self) -> X25519PrivateKey:
        return self._private


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _check_kdf(n: object, r: object, p: object) -> tuple[int, int, int]:
    """The scrypt cost of a key file, refused unless it is in the bounds a reader accepts (format.py)."""
    for value in (n, r, p):
        if type(value) is not int:  # not bool, float, str or null
            raise ValueError("its key derivation settings are not whole numbers")
    assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
    if not (F.SCRYPT_N_RANGE[0] <= n <= F.SCRYPT_N_RANGE[1]) or n & (n - 1):
        raise ValueError(f"its key derivation cost N is out of bounds (a power of two from "
                         f"{F.SCRYPT_N_RANGE[0]} to {F.SCRYPT_N_RANGE[1]})")
    if not (F.SCRYPT_R_RANGE[0] <= r <= F.SCRYPT_R_RANGE[1]) or not (F.SCRYPT_P_RANGE[0] <= p <= F.SCRYPT_P_RANGE[1]):
        raise ValueError("its key derivation settings r or p are out of bounds")
    if 128 * n * r > F.SCRYPT_MAX_MEMORY or n * r * p > F.SCRYPT_MAX_WORK:
        raise ValueError("its key derivation would take more memory or time than a desktop key file may ask")
    return n, r, p


def seal_key_file(key: DesktopKey, passphrase: str, *, n: int = F.SCRYPT_N, r: int = F.SCRYPT_R,
                  p: int = F.SCRYPT_P) -> bytes:
    """The desktop key as a small JSON document, encrypted under a passphrase-derived key."""
    if not passphrase:
        raise WrongPassphrase("A key file needs a passphrase that is not empty.")
    salt, nonce = os.urandom(16), os.urandom(12)
    public = key.public.to_text()
    sealed = ChaCha20Poly1305(_scrypt(passphrase, salt, n, r, p)).encrypt(nonce, key.raw(), public.encode())
    doc = {
        "format": F.KEYFILE_MAGIC,
        "public": public,
        "kdf": {"name": "scrypt", "n": n, "r": r, "p": p, "salt": base64.b64encode(salt).decode()},
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def _damaged(why: str) -> NoDesktopKey:
    return NoDesktopKey(f"The desktop key file is damaged ({why}); enrol this desktop again "
                        "(backup-operator enroll --replace) and send IT the new key.")


def _key_file_doc(data: bytes) -> dict:
    if len(data) > F.MAX_KEYFILE_BYTES:
        raise _damaged("it is far larger than a key file")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise _damaged("it is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != F.KEYFILE_MAGIC:
        raise _damaged("it is not a desktop key file")
    return doc


def key_file_public(data: bytes) -> DesktopPublicKey:
    doc = _key_file_doc(data)
    if not isinstance(doc.get("public"), str):
        raise _damaged("it names no public key")
    try:
        return DesktopPublicKey.from_text(doc["public"])
    except BadKeyText:
        raise _damaged("its public key is mistyped") from None


def open_key_file(data: bytes, passphrase: str) -> DesktopKey:
    """The desktop key in a key file. Every field is checked, and the scrypt cost bounded, before any work."""
    doc = _key_file_doc(data)
    try:
        kdf = doc["kdf"]
        if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
            raise ValueError("its key derivation is not scrypt")
        n, r, p = _check_kdf(kdf.get("n"), kdf.get("r"), kdf.get("p"))
        fields = {}
        for name, value, sizes in (("salt", kdf.get("salt"), range(8, 65)), ("nonce", doc.get("nonce"), (12,)),
                                   ("sealed", doc.get("sealed"), (32 + 16, 64 + 16))):
            if not isinstance(value, str) or len(value) > 256:
                raise ValueError(f"its {name} is missing")
            fields[name] = base64.b64decode(value, validate=True)
            if len(fields[name]) not in sizes:
                raise ValueError(f"its {name} has the wrong length")
        public = doc.get("public")
        if not isinstance(public, str) or len(public) > 256:
            raise ValueError("it names no public key")
        DesktopPublicKey.from_text(public)
    except (ValueError, TypeError, BadKeyText) as exc:
        raise _damaged(str(exc) if not isinstance(exc, (TypeError, BadKeyText)) else "a field is wrong") from None
    key_bytes = _scrypt(passphrase, fields["salt"], n, r, p)
    try:
        raw = ChaCha20Poly1305(key_bytes).decrypt(fields["nonce"], fields["sealed"], public.encode())
    except InvalidTag:
        raise WrongPassphrase("The passphrase for this desktop's key is wrong; try again, or ask IT "
                              "for the kit's passphrase.") from None
    try:
        key = DesktopKey.from_raw(raw)
    except ValueError:
        raise _damaged("the key inside is not a desktop key") from None
    if key.public.to_text() != public:
        raise NoDesktopKey("The desktop key file does not match its own public key; enrol again.")
    return key


# --- the OS key store ------------------------------------------------------------------------

KEYRING_SERVICE = "backup-operator"


def keyring_available() -> bool:
    """True when a real OS key store answers (not keyring's 'fail' or plaintext fallbacks)."""
    try:
        import keyring
        from keyring.backends import fail
    except Exception:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:
        return False
    if isinstance(backend, fail.Keyring):
        return False
    name = type(backend).__module__ + "." + type(backend).__name__
    if "chainer" in name.lower():
        return bool(getattr(backend, "backends", []))
    if "plaintext" in name.lower() or "null" in name.lower():
        return False
    return getattr(backend, "priority", 0) > 0


def keyring_save(account: str, key: DesktopKey) -> None:
    import keyring

    try:
        keyring.set_password(KEYRING_SERVICE, account, base64.b64encode(key.raw()).decode())
    except Exception as exc:
        raise KeyStoreUnavailable(f"The OS key store refused to keep this desktop's key ({exc}); "
                                  "enrol with --key-file for a passphrase-protected key file.") from exc


def keyring_load(account: str) -> DesktopKey:
    import keyring

    try:
        secret = keyring.get_password(KEYRING_SERVICE, account)
    except Exception as exc:
        raise KeyStoreUnavailable(f"The OS key store cannot be reached ({exc}); log in to the desktop "
                                  "session, or ask IT.") from exc
    if not secret:
        raise NoDesktopKey("This desktop's key is missing from the OS key store; enrol it again "
                           "(backup-operator enroll) and send IT the new key.")
    try:
        return DesktopKey.from_raw(base64.b64decode(secret, validate=True))
    except ValueError:
        raise NoDesktopKey("This desktop's key in the OS key store is damaged; enrol it again "
                           "(backup-operator enroll --replace) and send IT the new key.") from None


def keyring_delete(account: str) -> None:
    import keyring

    try:
        keyring.delete_password(KEYRING_SERVICE, account)
    except Exception:
        pass
