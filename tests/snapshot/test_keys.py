"""Keys: one-line key texts that refuse typos, and a desktop key that never rests on disk in the clear."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from backup_operator.errors import BadKeyText, NoDesktopKey, WrongPassphrase
from backup_operator.snapshot import format as F
from backup_operator.snapshot import keys

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def fixed_bytes(label: str) -> bytes:
    return hashlib.sha256(b"test_keys: " + label.encode()).digest()


@pytest.fixture(params=["desktop", "signer"])
def public_text(request) -> tuple[type, str]:
    if request.param == "desktop":
        return keys.DesktopPublicKey, keys.DesktopKey.from_raw(fixed_bytes("keys desktop")).public.to_text()
    return keys.SignerPublicKey, keys.SignerKey.from_raw(fixed_bytes("keys signer")).public.to_text()


def test_key_text_is_one_line_and_round_trips(public_text):
    cls, text = public_text
    assert "\n" not in text and " " not in text
    assert text.startswith(F.DESKTOP_PUBLIC_PREFIX if cls is keys.DesktopPublicKey else F.SIGNER_PUBLIC_PREFIX)
    key = cls.from_text(text)
    assert key.to_text() == text
    assert cls.from_text(text.upper().replace(text[:5].upper(), text[:5], 1)).raw == key.raw
    # Pasted from an e-mail that wrapped the line, or with spaces around it: still the same key.
    assert cls.from_text(f"  {text[:30]}\n{text[30:]}  \n").raw == key.raw


def test_every_mistyped_character_is_refused(public_text):
    cls, text = public_text
    prefix_len = len(F.DESKTOP_PUBLIC_PREFIX if cls is keys.DesktopPublicKey else F.SIGNER_PUBLIC_PREFIX)
    accepted = []
    tried = 0
    for i in range(prefix_len, len(text)):
        for ch in BASE32 + "018=-":
            if ch == text[i]:
                continue
            tried += 1
            try:
                cls.from_text(text[:i] + ch + text[i + 1:])
            except BadKeyText:
                continue
            accepted.append((i, ch))
    assert tried > 1000
    assert accepted == [], "a mistyped key text was accepted"


def test_swapped_neighbours_and_truncations_are_refused(public_text):
    cls, text = public_text
    start = len(text) - len(text.split("-")[-1])
    for i in range(start, len(text) - 1):
        if text[i] != text[i + 1]:
            with pytest.raises(BadKeyText):
                cls.from_text(text[:i] + text[i + 1] + text[i] + text[i + 2:])
    for cut in range(1, len(text) - start + 1):
        with pytest.raises(BadKeyText):
            cls.from_text(text[:-cut])
    with pytest.raises(BadKeyText):
        cls.from_text(text + "a")
    with pytest.raises(BadKeyText):
        cls.from_text("")


def test_a_signer_key_where_a_desktop_key_belongs_says_so():
    signer_text = keys.SignerKey.from_raw(fixed_bytes("s")).public.to_text()
    desktop_text = keys.DesktopKey.from_raw(fixed_bytes("d")).public.to_text()
    with pytest.raises(BadKeyText, match="that is a signer key"):
        keys.DesktopPublicKey.from_text(signer_text)
    with pytest.raises(BadKeyText, match="that is a desktop key"):
        keys.SignerPublicKey.from_text(desktop_text)
    with pytest.raises(BadKeyText, match="should start with 'bo-desktop-'"):
        keys.DesktopPublicKey.from_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")


def test_bad_key_messages_are_one_line_and_leak_no_key():
    text = keys.DesktopKey.from_raw(fixed_bytes("d")).public.to_text()
    for bad in (text[:-3], text[:20] + "1" + text[21:], keys.SignerKey.from_raw(fixed_bytes("s")).public.to_text()):
        with pytest.raises(BadKeyText) as info:
            keys.DesktopPublicKey.from_text(bad)
        message = str(info.value)
        assert "\n" not in message and bad[len("bo-desktop-"):] not in message


def test_recipient_id_is_stable_and_short():
    public = keys.DesktopKey.from_raw(fixed_bytes("d")).public
    assert public.recipient_id == keys.DesktopPublicKey.from_text(public.to_text()).recipient_id
    assert len(public.recipient_id) == 2 * F.RECIPIENT_ID_BYTES
    assert public.recipient_id != keys.DesktopKey.from_raw(fixed_bytes("e")).public.recipient_id


# --- the key file ------------------------------------------------------------------------------


def _encodings(raw: bytes) -> list[bytes]:
    return [raw, raw.hex().encode(), raw.hex().upper().encode(), base64.b64encode(raw),
            base64.b64encode(raw).rstrip(b"="), base64.urlsafe_b64encode(raw).rstrip(b"="),
            base64.b32encode(raw).rstrip(b"="), base64.b32encode(raw).lower().rstrip(b"=")]


def test_key_file_round_trips_and_never_holds_the_raw_private_key():
    key = keys.DesktopKey.from_raw(fixed_bytes("key file"))
    data = keys.seal_key_file(key, "pass phrase", n=2**12)
    assert keys.open_key_file(data, "pass phrase").raw() == key.raw()
    for form in _encodings(key.raw()):
        assert form not in data
    # Half of the key is not there either (a partial leak in some other encoding's alignment).
    assert key.raw()[:16] not in data and key.raw()[16:] not in data
    doc = json.loads(data)
    assert doc["format"] == F.KEYFILE_MAGIC and doc["public"] == key.public.to_text()
    assert keys.key_file_public(data) == key.public


def test_key_file_with_the_default_cost_uses_scrypt_2_17():
    key = keys.DesktopKey.from_raw(fixed_bytes("key file default"))
    data = keys.seal_key_file(key, "pass phrase")
    assert json.loads(data)["kdf"] == {**json.loads(data)["kdf"], "name": "scrypt", "n": 2**17, "r": 8, "p": 1}
    assert keys.open_key_file(data, "pass phrase").raw() == key.raw()


def test_key_file_wrong_passphrase():
    key = keys.DesktopKey.from_raw(fixed_bytes("key file"))
    data = keys.seal_key_file(key, "pass phrase", n=2**12)
    for wrong in ("pass phrasE", "pass phrase ", "", "pass"):
        with pytest.raises(WrongPassphrase):
            keys.open_key_file(data, wrong)


def test_key_file_needs_a_passphrase():
    with pytest.raises(WrongPassphrase):
        keys.seal_key_file(keys.DesktopKey.from_raw(fixed_bytes("k")), "", n=2**12)


def test_two_key_files_of_one_key_differ():
    key = keys.DesktopKey.from_raw(fixed_bytes("key file"))
    one, two = (json.loads(keys.seal_key_file(key, "pw", n=2**12)) for _ in range(2))
    assert one["kdf"]["salt"] != two["kdf"]["salt"] and one["sealed"] != two["sealed"]


@pytest.mark.parametrize("damage", [
    lambda d: b"not json",
    lambda d: json.dumps({**json.loads(d), "format": "something else"}).encode(),
    lambda d: json.dumps({**json.loads(d), "kdf": {**json.loads(d)["kdf"], "name": "pbkdf2"}}).encode(),
    lambda d: json.dumps({k: v for k, v in json.loads(d).items() if k != "nonce"}).encode(),
    lambda d: json.dumps({**json.loads(d), "sealed": "!!!"}).encode(),
])
def test_damaged_key_file(damage):
    key = keys.DesktopKey.from_raw(fixed_bytes("key file"))
    with pytest.raises(NoDesktopKey):
        keys.open_key_file(damage(keys.seal_key_file(key, "pw", n=2**12)), "pw")


def test_key_file_whose_public_key_was_swapped_is_refused():
    key = keys.DesktopKey.from_raw(fixed_bytes("key file"))
    doc = json.loads(keys.seal_key_file(key, "pw", n=2**12))
    doc["public"] = keys.DesktopKey.from_raw(fixed_bytes("other")).public.to_text()
    # The public key text is the AEAD's associated data, so the swap fails authentication.
    with pytest.raises((WrongPassphrase, NoDesktopKey)):
        keys.open_key_file(json.dumps(doc).encode(), "pw")


def test_signer_pem_round_trip_and_wrong_passphrase():
    key = keys.SignerKey.from_raw(fixed_bytes("signer pem"))
    pem = key.to_pem(b"secret")
    assert keys.SignerKey.from_pem(pem, b"secret").public == key.public
    assert fixed_bytes("signer pem") not in pem
    with pytest.raises(WrongPassphrase):
        keys.SignerKey.from_pem(pem, b"wrong")
    with pytest.raises(WrongPassphrase):
        keys.SignerKey.from_pem(pem, None)
    with pytest.raises(BadKeyText):
        keys.SignerKey.from_pem(_x25519_pem())


def _x25519_pem() -> bytes:
    # An X25519 key in a PEM is a key of the wrong kind for signing. Built through keys' own wrapper
    # so that this test does not import cryptography itself.
    desktop = keys.DesktopKey.from_raw(fixed_bytes("x"))
    from cryptography.hazmat.primitives import serialization  # tests may; the package may not

    return desktop._x25519().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())


# --- the desktop's signing key (issue 10) ------------------------------------------------------------


def _signing_key(label: str = "signing desktop") -> keys.DesktopKey:
    return keys.DesktopKey.from_raw(fixed_bytes(label) + fixed_bytes(label + " ed25519"))


def test_a_desktop_key_made_at_enrolment_signs_and_its_text_carries_both_public_keys():
    made = keys.DesktopKey.generate()
    assert made.can_sign and len(made.raw()) == 64
    text = made.public.to_text()
    public = keys.DesktopPublicKey.from_text(text)
    assert public.can_sign and public == made.public and public.to_text() == text
    # The X25519 half is what snapshots are sealed to: same recipient id with or without the signing key.
    assert public.recipient_id == keys.DesktopPublicKey(public.raw).recipient_id
    signature = made.sign("journal", b"message")
    assert public.verify("journal", signature, b"message")
    assert not public.verify("journal", signature, b"messagE")
    assert not keys.DesktopKey.generate().public.verify("journal", signature, b"message")


def test_a_desktop_signature_is_bound_to_its_purpose():
    key = _signing_key()
    public = key.public
    purposes = sorted(F.DESKTOP_SIGNING_CONTEXTS)
    assert {"journal", "drill", "receipt"} <= set(purposes)
    assert len(set(F.DESKTOP_SIGNING_CONTEXTS.values())) == len(purposes)
    for made_for in purposes:
        signature = key.sign(made_for, b"the same bytes")
        assert [p for p in purposes if public.verify(p, signature, b"the same bytes")] == [made_for]
    with pytest.raises(ValueError):
        key.sign("anything else", b"x")
    assert not public.verify("anything else", key.sign("journal", b"x"), b"x")
    assert not public.verify("journal", b"short", b"x")


def test_a_key_enrolled_before_desktops_signed_still_opens_and_says_it_cannot_sign():
    old = keys.DesktopKey.from_raw(fixed_bytes("legacy desktop"))
    assert not old.can_sign and len(old.raw()) == 32
    public = keys.DesktopPublicKey.from_text(old.public.to_text())
    assert not public.can_sign and not public.verify("journal", b"\0" * 64, b"x")
    data = keys.seal_key_file(old, "pw", n=2**12)  # a key file written by the previous release
    opened = keys.open_key_file(data, "pw")
    assert opened.raw() == old.raw() and not opened.can_sign
    with pytest.raises(NoDesktopKey, match="enroll --upgrade"):
        opened.sign("journal", b"x")
    upgraded = opened.with_signing_key()
    assert upgraded.can_sign and upgraded.public.raw == old.public.raw  # snapshots still open
    assert keys.open_key_file(keys.seal_key_file(upgraded, "pw", n=2**12), "pw").raw() == upgraded.raw()


def test_key_file_with_a_signing_key_round_trips_and_holds_neither_private_key():
    key = _signing_key("key file signing")
    data = keys.seal_key_file(key, "pass phrase", n=2**12)
    assert keys.open_key_file(data, "pass phrase").raw() == key.raw()
    for form in _encodings(key.raw()[:32]) + _encodings(key.raw()[32:]):
        assert form not in data
    assert keys.key_file_public(data) == key.public and key.public.can_sign


def _hostile(**kdf) -> bytes:
    doc = json.loads(keys.seal_key_file(_signing_key("hostile"), "pw", n=2**12))
    doc["kdf"].update(kdf)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("kdf", [
    {"n": 2**40}, {"n": -1}, {"n": 0}, {"n": 2**24}, {"n": 2**21}, {"n": 3000}, {"p": 2**20}, {"p": 0},
    {"r": 2**30}, {"r": -8}, {"n": 2**20, "r": 32}, {"n": 2**20, "r": 8, "p": 16}, {"n": "16384"},
    {"n": 16384.0}, {"n": True}, {"n": None}, {"r": [8]}, {"p": {"a": 1}}, {"salt": 5}, {"salt": "!!"},
    {"salt": ""}, {"name": None},
], ids=repr)
def test_hostile_kdf_parameters_are_refused_before_any_work(kdf):
    import time

    started = time.perf_counter()
    with pytest.raises(NoDesktopKey) as info:
        keys.open_key_file(_hostile(**kdf), "pw")
    assert time.perf_counter() - started < 1.0
    assert "\n" not in str(info.value) and str(info.value).endswith(".")


@pytest.mark.parametrize("damage", [
    lambda d: {**d, "kdf": "scrypt"}, lambda d: {**d, "nonce": 12}, lambda d: {**d, "nonce": "AAAA"},
    lambda d: {**d, "public": 5}, lambda d: {**d, "public": "bo-desktop-aaaa"}, lambda d: [d],
    lambda d: {**d, "sealed": base64.b64encode(b"\0" * 20).decode()}, lambda d: {**d, "sealed": "A" * 100_000},
], ids=range(8))
def test_damaged_key_file_fields_of_the_wrong_kind_are_one_sentence(damage):
    doc = json.loads(keys.seal_key_file(_signing_key("damaged"), "pw", n=2**12))
    with pytest.raises(NoDesktopKey):
        keys.open_key_file(json.dumps(damage(doc)).encode(), "pw")
    with pytest.raises(NoDesktopKey):
        keys.open_key_file(b"[" * 100_000 + b"]" * 100_000, "pw")  # nesting: no RecursionError
