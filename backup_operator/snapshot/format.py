"""Every constant of the .bosnap file format, in one place (see docs/FORMAT.md).

Changing any value here changes the format: bump FORMAT_VERSION and keep a reader for the old one.
This module must never import anything but the standard library.
"""

from __future__ import annotations

# Format 2 compresses the payload with Zstandard (decompresses several times faster than zlib at a similar
# ratio); format 1 (zlib) is still read, never written. The magic line, the header's ``format`` and its
# ``compression`` must agree (docs/FORMAT.md §4, §5, §7).
FORMAT_VERSION = 2
MAGIC = b"backup-operator.snapshot/v2\n"
MAGIC_V1 = b"backup-operator.snapshot/v1\n"
MAGIC_PREFIX = b"backup-operator.snapshot/v"  # to tell "newer format" from "not a snapshot"
FILE_SUFFIX = ".bosnap"

# A delta (docs/FORMAT.md §12): the same envelope under its own magic, so that no reader can take a delta
# for a snapshot; its header adds the base version and the content hashes before and after.
DELTA_MAGIC = b"backup-operator.delta/v2\n"
DELTA_MAGIC_V1 = b"backup-operator.delta/v1\n"
DELTA_MAGIC_PREFIX = b"backup-operator.delta/v"
DELTA_SUFFIX = ".bodelta"
DELTA_HEADER_FIELDS = ("base_version", "base_content", "content")
CONTENT_HASH_SIZE = 32
# Deltas are sealed to a group key instead of to each desktop (one stanza, not 10,000): the key travels
# inside every full snapshot's database, in meta row META_DELTA_KEY = "<16 hex id>:<64 hex key>".
DELTA_KEY_INFO = b"backup-operator/v1 delta file key"
GROUP_STANZA_PREFIX = "group-"
META_DELTA_KEY = "delta_key"
DELTA_KEY_ID_BYTES = 8

# The signed manifest of a published folder (docs/FORMAT.md §13): what an http(s) inbox offers.
MANIFEST_MAGIC = b"backup-operator.manifest/v1\n"
MANIFEST_FORMAT_VERSION = 1  # the manifest's own format: not the snapshot's
MANIFEST_MAGIC_PREFIX = b"backup-operator.manifest/v"
MANIFEST_NAME = "manifest.bomanifest"
MANIFEST_SIGNATURE_CONTEXT = b"backup-operator/v1 manifest\n"
MAX_MANIFEST_BYTES = 1024 * 1024

HEADER_LENGTH_BYTES = 4  # big-endian length of the header that follows the magic line
MAX_HEADER_BYTES = 4 * 1024 * 1024  # room for thousands of recipients, and no more

CHUNK_SIZE = 64 * 1024  # plaintext bytes per STREAM chunk
MIN_CHUNK_SIZE = 1024  # what a reader accepts in a header
MAX_CHUNK_SIZE = 16 * 1024 * 1024
MAX_VERSION = 2**53  # snapshot versions stay exact in every JSON reader (and in SQLite, and in JavaScript)
TAG_SIZE = 16  # ChaCha20-Poly1305 tag
STREAM_NONCE_COUNTER_BYTES = 11
LAST_CHUNK_FLAG = 0x01

FILE_KEY_SIZE = 32
PAYLOAD_NONCE_SIZE = 16
PAYLOAD_KEY_INFO = b"backup-operator/v1 payload"
HPKE_INFO = b"backup-operator/v1 file key"
SIGNATURE_CONTEXT = b"backup-operator/v1 signature\n"
ENDORSEMENT_CONTEXT = b"backup-operator/v1 endorse signer\n"
SIGNATURE_SIZE = 64
WRAPPED_KEY_SIZE = 32 + FILE_KEY_SIZE + 16  # HPKE: X25519 enc, then the file key and its tag
GROUP_WRAPPED_KEY_SIZE = FILE_KEY_SIZE + 16  # a delta's group stanza: the file key and its tag
RECIPIENT_ID_BYTES = 8

COMPRESSION = "zstd"
COMPRESSION_OF_FORMAT = {1: "zlib", 2: "zstd"}  # every format this program reads, and its compression
ZSTD_LEVEL = 3  # the exporter's level; a reader accepts any level
PLAINTEXT_HASH_SIZE = 32  # SHA-256 of the SQLite database, first thing inside the encrypted stream

DEFAULT_SIZE_CAP = 512 * 1024 * 1024  # a sealed snapshot larger than this is refused unread
MAX_DATABASE_BYTES = 4 * 1024 * 1024 * 1024  # decompression stops here (a compression bomb)
DECOMPRESS_PIECE = 1024 * 1024  # decompression output is produced (and counted) at most this much at a time

# One-line key texts: prefix + base32 (lowercase, unpadded) of the 32 key bytes + a 4-byte checksum.
SIGNER_PUBLIC_PREFIX = "bo-signer-"
DESKTOP_PUBLIC_PREFIX = "bo-desktop-"
KEY_CHECKSUM_BYTES = 4

# A desktop key file sealed with a passphrase (portable kits).
KEYFILE_MAGIC = "backup-operator.desktop-key/v1"
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
# What a reader accepts from a key file (a damaged or hostile file must not cost gigabytes or hours):
# N a power of two in [2^10, 2^20], r in [1, 32], p in [1, 16], scrypt memory 128*N*r <= 256 MiB and
# work N*r*p <= 2^24 (16 times the default).
SCRYPT_N_RANGE = (2**10, 2**20)
SCRYPT_R_RANGE = (1, 32)
SCRYPT_P_RANGE = (1, 16)
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024
SCRYPT_MAX_WORK = 2**24
MAX_KEYFILE_BYTES = 64 * 1024

# A desktop's key pair is two keys: X25519 (snapshots are sealed to it) and, since issue 10, Ed25519 (it
# signs what the desktop sends back). Its key text then carries both public keys: base32 of
# X25519 public (32) || Ed25519 public (32) || checksum (4); a text with only the X25519 key (32 bytes)
# is a desktop enrolled before desktops could sign. Each signature is made over a context naming its
# purpose, so that a signature made for one kind of file is never valid for another.
DESKTOP_SIGNING_CONTEXTS = {
    "journal": b"backup-operator/v1 desktop signs journal\n",
    "drill": b"backup-operator/v1 desktop signs drill receipt\n",
    "receipt": b"backup-operator/v1 desktop signs snapshot receipt\n",
}

# --- the outage journal and other files a desktop sends back (docs/FORMAT.md, "Files from desktops") ---

# On disk on the desktop: a header line, then one frame per saved entry, each sealed with HPKE to the
# desktop's own X25519 key (so saving an entry needs no passphrase; reading needs the private key).
JOURNAL_LOG_MAGIC = b"backup-operator.journal-log/v1\n"
JOURNAL_FRAME_MAGIC = b"BOJ1"
JOURNAL_FRAME_HEADER = 4 + 8 + 4  # magic, sequence number (uint64), sealed length (uint32), big-endian
JOURNAL_ENTRY_INFO = b"backup-operator/v1 journal entry\n"
MAX_JOURNAL_ENTRY_BYTES = 256 * 1024

# A file a desktop sends to the exporter: signed with the desktop's Ed25519 key, sealed to the exporter.
SEALED_FILE_MAGIC_PREFIX = b"backup-operator.sealed/"
SEALED_JOURNAL_MAGIC = b"backup-operator.sealed/journal-v1\n"
SEALED_FILE_INFO = b"backup-operator/v1 sealed file\n"
SEALED_FILE_SIGNATURE_CONTEXT = b"backup-operator/v1 sealed file signature\n"
SIGNED_DOCUMENT_CONTEXT = b"backup-operator/v1 signed document\n"
MAX_SEALED_FILE_BYTES = 64 * 1024 * 1024
EXPORTER_PUBLIC_PREFIX = "bo-exporter-"
