"""Signed checkpoints of the tamper-evident log (SEC-107(3), MLIT-9.5.8): the tree head (origin, size, root) as a
C2SP tlog-checkpoint body inside a C2SP signed note, signed with Ed25519 (signed-note signature type 0x01).

The wire format is the one golang.org/x/mod/sumdb/note and the transparency-dev witnesses read::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>
    time <UTC, RFC 3339 with microseconds and Z>      (optional extension line; the only one this module knows)

    — <key name> <base64(4-byte key ID ‖ 64-byte Ed25519 signature over the text above the blank line)>

key ID = SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]; a verifier key is written
``<name>+<hex key ID>+<base64(0x01 ‖ public key)>``. Parsing is strict and canonical, so a checkpoint has exactly one
encoding and every malformation is a ``CheckpointError`` (a ValueError) that says what is wrong. Signing goes through
a ``sign(message) -> signature`` callback so the private key can stay in an HSM.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519_TYPE = 0x01  # signed-note signature type identifier of Ed25519
HASH_SIZE = 32
SIGNATURE_SIZE = 64
MAX_SIGNATURES = 100  # the signed-note spec asks verifiers to cap the count, and to accept at least 16
MAX_TREE_SIZE = 2**64 - 1

_SIG_PREFIX = "— "  # em dash U+2014, space
_TIME_PREFIX = "time "
_SIZE = re.compile(r"0|[1-9][0-9]*")
_DIGITS = re.compile(r"[0-9]+")
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z")
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")

Signer = Callable[[bytes], bytes]


class CheckpointError(ValueError):
    """A malformed note or checkpoint, or no valid signature by the expected key."""


# --- Checkpoint body (c2sp.org/tlog-checkpoint) ----------------------------------------------------------------------


def _format_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``size`` leaves under Merkle root ``root`` in the log named ``origin``, optionally stamped with
    the (timezone-aware, stored as UTC) time the log produced it."""

    origin: str
    size: int
    root: bytes
    time: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointError("checkpoint origin is empty")
        if any(c < " " or c == "\x7f" for c in self.origin):
            raise CheckpointError("checkpoint origin contains a control character")
        try:
            self.origin.encode("utf-8")
        except UnicodeEncodeError:
            raise CheckpointError("checkpoint origin is not valid UTF-8 text") from None
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint tree size {self.size!r} is not an integer in [0, 2^64)")
        if not isinstance(self.root, bytes | bytearray) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        object.__setattr__(self, "root", bytes(self.root))
        if self.time is not None:
            if not isinstance(self.time, dt.datetime) or self.time.utcoffset() is None:
                raise CheckpointError("checkpoint time must be a timezone-aware datetime")
            object.__setattr__(self, "time", self.time.astimezone(dt.UTC))

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        if self.time is not None:
            lines.append(_TIME_PREFIX + _format_time(self.time))
        return "".join(line + "\n" for line in lines)

    def body(self) -> bytes:
        """The note text that is signed, UTF-8."""
        return self.text().encode("utf-8")


def _b64decode(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def _parse_time(value: str) -> dt.datetime:
    m = _TIME.fullmatch(value)
    if m is None:
        raise CheckpointError(f"time extension {value!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    year, month, day, hour, minute, second, micro = (int(g) for g in m.groups())
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=dt.UTC)
    except ValueError as e:
        raise CheckpointError(f"time extension {value!r} is not a valid time: {e}") from None


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint in a note's text (everything above the blank line, final newline included)."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(f"checkpoint has {len(lines)} line(s); it needs origin, tree size and root hash")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise CheckpointError("checkpoint origin is empty")
    if _SIZE.fullmatch(size_text) is None:
        if _DIGITS.fullmatch(size_text):
            raise CheckpointError(f"checkpoint tree size {size_text!r} is not canonical decimal (leading zero)")
        raise CheckpointError(f"checkpoint tree size {size_text!r} is not a decimal number")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise CheckpointError(f"checkpoint tree size {size_text} does not fit in 64 bits")
    root = _b64decode(root_text, "checkpoint root hash")
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root hash is {len(root)} bytes, not {HASH_SIZE}")
    time: dt.datetime | None = None
    for line in extensions:
        if not line:
            raise CheckpointError("checkpoint has an empty extension line")
        if not line.startswith(_TIME_PREFIX):
            raise CheckpointError(f"checkpoint has an unknown extension line {line[:40]!r}")
        if time is not None:
            raise CheckpointError("checkpoint has more than one time extension line")
        time = _parse_time(line[len(_TIME_PREFIX) :])
    return Checkpoint(origin=origin, size=size, root=root, time=time)


# --- Keys ------------------------------------------------------------------------------------------------------------


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise CheckpointError("key name is empty")
    if any(c.isspace() or c < " " for c in name) or "+" in name:
        raise CheckpointError(f"key name {name!r} contains a space, a control character or '+'")


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key_name: str, public_key: Ed25519PublicKey) -> bytes:
    """SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], the signed-note key ID of an Ed25519 key."""
    _check_key_name(key_name)
    return hashlib.sha256(key_name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + _raw(public_key)).digest()[:4]


def public_key_text(key_name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key ``<name>+<hex key ID>+<base64(0x01 ‖ public key)>`` (golang.org/x/mod/sumdb/note)."""
    encoded = base64.b64encode(bytes([ED25519_TYPE]) + _raw(public_key)).decode("ascii")
    return f"{key_name}+{key_id(key_name, public_key).hex()}+{encoded}"


def parse_public_key_text(text: str) -> tuple[str, Ed25519PublicKey]:
    """The key name and Ed25519 public key of a verifier key; the key ID in it must match the key."""
    name, plus1, rest = text.partition("+")  # the name has no '+'; the base64 may
    id_hex, plus2, key_text = rest.partition("+")
    if not (plus1 and plus2):
        raise CheckpointError("verifier key is not <name>+<hex key ID>+<base64 key>")
    _check_key_name(name)
    if _KEY_ID_HEX.fullmatch(id_hex) is None:
        raise CheckpointError(f"verifier key ID {id_hex!r} is not 8 hex digits")
    raw = _b64decode(key_text, "verifier key")
    if not raw or raw[0] != ED25519_TYPE:
        raise CheckpointError("verifier key is not an Ed25519 key (signature type 0x01)")
    if len(raw) != 1 + 32:
        raise CheckpointError(f"verifier key holds {len(raw) - 1} key bytes, not 32")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, public_key) != bytes.fromhex(id_hex):
        raise CheckpointError(f"verifier key ID {id_hex} does not match the key and name")
    return name, public_key


def ed25519_signer(private_key: Ed25519PrivateKey) -> Signer:
    """A ``sign`` callback over a private key held in memory (an HSM supplies its own callback instead)."""
    return private_key.sign


# --- Signed notes (c2sp.org/signed-note) ---------------------------------------------------------------------------


def _check_text(text: str, what: str) -> None:
    if not text.endswith("\n"):
        raise CheckpointError(f"{what} does not end with a newline")
    bad = next((c for c in text if c < " " and c != "\n"), None)
    if bad is not None:
        raise CheckpointError(f"{what} contains the control character {bad!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError(f"{what} is not valid UTF-8") from None


def sign_note(text: str, key_name: str, sign: Signer, public_key: Ed25519PublicKey) -> str:
    """``text`` as a signed note with one signature line by ``key_name``.

    ``public_key`` gives the key ID (a signature alone does not reveal it) and checks the callback's signature before
    it is published, so a misconfigured signer fails here rather than in every verifier."""
    _check_text(text, "note text")
    kid = key_id(key_name, public_key)
    message = text.encode("utf-8")
    signature = sign(message)
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise CheckpointError(f"signer returned something other than a {SIGNATURE_SIZE}-byte Ed25519 signature")
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        raise CheckpointError(f"signer's signature does not verify with the public key of {key_name}") from None
    return f"{text}\n{_SIG_PREFIX}{key_name} {base64.b64encode(kid + signature).decode('ascii')}\n"


def sign_checkpoint(cp: Checkpoint, key_name: str, sign: Signer, public_key: Ed25519PublicKey) -> str:
    """The checkpoint as a signed note (SEC-107(3), MLIT-9.5.8)."""
    return sign_note(cp.text(), key_name, sign, public_key)


def split_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """A signed note's text and its signatures as ``(key name, 4-byte key ID, signature)``, unverified.

    The text ends at the last blank line; each signature line must be well formed (any signature type: other keys'
    lines, such as witness cosignatures, are returned too)."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("note is not valid UTF-8") from None
    if not isinstance(note, str):
        raise CheckpointError("note is neither text nor bytes")
    _check_text(note, "note")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise CheckpointError("note has no blank line between the text and the signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    if not block:
        raise CheckpointError("note has no signature lines after the blank line")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    signatures: list[tuple[str, bytes, bytes]] = []
    for n, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(f"signature line {n} does not start with an em dash and a space")
        fields = line[len(_SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise CheckpointError(f"signature line {n} is not '— <key name> <base64 signature>'")
        name, encoded = fields
        _check_key_name(name)
        raw = _b64decode(encoded, f"signature line {n}")
        if len(raw) < 5:
            raise CheckpointError(f"signature line {n} is too short for a key ID and a signature")
        signatures.append((name, raw[:4], raw[4:]))
    return text, signatures


def parse_note(note: str | bytes) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """A signed checkpoint and its signatures, parsed strictly but NOT verified (use ``verify_note``)."""
    text, signatures = split_note(note)
    return parse_checkpoint(text), signatures


def open_note(note: str | bytes, key_name: str, public_key: Ed25519PublicKey) -> str:
    """The text of a signed note that carries a valid signature by ``key_name``/``public_key``.

    Per the signed-note spec, lines by other keys (another name or key ID) are ignored, and a line by this key whose
    signature fails rejects the whole note. CheckpointError when the note is malformed or has no valid signature."""
    text, signatures = split_note(note)
    kid = key_id(key_name, public_key)
    mine = [sig for name, sig_kid, sig in signatures if name == key_name and sig_kid == kid]
    if not mine:
        raise CheckpointError(f"note has no signature by {key_name} (key ID {kid.hex()})")
    message = text.encode("utf-8")
    for sig in mine:
        try:
            if len(sig) != SIGNATURE_SIZE:
                raise InvalidSignature
            public_key.verify(sig, message)
        except InvalidSignature:
            raise CheckpointError(f"note's signature by {key_name} does not verify") from None
    return text


def verify_note(
    note: str | bytes, key_name: str, public_key: Ed25519PublicKey, *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint of a note validly signed by ``key_name``/``public_key`` (SEC-107(3), MLIT-9.5.8).

    With ``origin``, the checkpoint must also name that log. CheckpointError otherwise."""
    cp = parse_checkpoint(open_note(note, key_name, public_key))
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint is for log {cp.origin!r}, not {origin!r}")
    return cp
