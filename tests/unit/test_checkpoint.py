"""Signed checkpoints of the tamper-evident log: C2SP tlog-checkpoint bodies in C2SP signed notes with Ed25519
(SEC-107(3), MLIT-9.5.8, ANON-12).

Interoperability is pinned by the known answer of golang.org/x/mod/sumdb/note (its package documentation and
note_test.go): the PeterNeumann key, verifier key string and signed note, which Ed25519's deterministic signatures let
us reproduce byte for byte. Everything else is round trips, tampering (every single-character change of a signed note
is rejected) and strict parsing with messages that say what is wrong.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from hogo.crypto.checkpoint import (
    Checkpoint,
    CheckpointError,
    ed25519_signer,
    key_id,
    open_note,
    parse_checkpoint,
    parse_note,
    parse_public_key_text,
    public_key_text,
    sign_checkpoint,
    sign_note,
    split_note,
    verify_note,
)

# golang.org/x/mod/sumdb/note: the example in the package documentation and in note_test.go.
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

NAME = "hogo.example/audit"
ROOT = hashlib.sha256(b"some tree").digest()
TIME = dt.datetime(2025, 4, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"test key").digest())
PUB = KEY.public_key()
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"other key").digest())


def _go_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(GO_SIGNER_KEY.split("+", 4)[4])
    assert raw[0] == 0x01
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def _signed(cp: Checkpoint, key: Ed25519PrivateKey = KEY, name: str = NAME) -> str:
    return sign_checkpoint(cp, name, ed25519_signer(key), key.public_key())


CP = Checkpoint(origin=NAME, size=12345, root=ROOT, time=TIME)
NOTE = _signed(CP)


# --- Interoperability: golang.org/x/mod/sumdb/note -------------------------------------------------------------------


def test_go_verifier_key_and_signed_note_are_reproduced():
    key = _go_key()
    assert public_key_text("PeterNeumann", key.public_key()) == GO_VERIFIER_KEY
    assert key_id("PeterNeumann", key.public_key()).hex() == "c74f20a3"
    assert sign_note(GO_TEXT, "PeterNeumann", ed25519_signer(key), key.public_key()) == GO_NOTE


def test_go_signed_note_opens_with_the_parsed_verifier_key():
    name, pub = parse_public_key_text(GO_VERIFIER_KEY)
    assert name == "PeterNeumann"
    assert pub.public_bytes(Encoding.Raw, PublicFormat.Raw) == base64.b64decode(GO_VERIFIER_KEY.split("+", 2)[2])[1:]
    assert open_note(GO_NOTE, name, pub) == GO_TEXT
    assert open_note(GO_NOTE.encode("utf-8"), name, pub) == GO_TEXT
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), name, pub)
    with pytest.raises(CheckpointError, match="needs origin, tree size and root hash"):  # a note, not a checkpoint
        verify_note(GO_NOTE, name, pub)


# --- Format and round trip ---------------------------------------------------------------------------------------


def test_checkpoint_body_and_note_layout():
    root64 = base64.b64encode(ROOT).decode()
    assert CP.body() == f"{NAME}\n12345\n{root64}\ntime 2025-04-01T09:30:15.123456Z\n".encode()
    text, sig_block = NOTE.split("\n\n")
    assert text + "\n" == CP.body().decode()
    assert sig_block.startswith(f"\u2014 {NAME} ")
    assert sig_block.endswith("\n") and sig_block.count("\n") == 1
    raw = base64.b64decode(sig_block.split(" ")[2])
    assert len(raw) == 4 + 64
    assert (
        raw[:4]
        == hashlib.sha256(NAME.encode() + b"\n\x01" + PUB.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()[:4]
    )
    PUB.verify(raw[4:], CP.body())
    assert Checkpoint(NAME, 0, ROOT).body() == f"{NAME}\n0\n{root64}\n".encode()
    assert Checkpoint(NAME, 1, ROOT, TIME.replace(microsecond=0)).text().endswith("time 2025-04-01T09:30:15.000000Z\n")


def test_round_trip():
    cp, sigs = parse_note(NOTE)
    assert cp == CP
    assert sigs == [(NAME, key_id(NAME, PUB), sigs[0][2])]
    assert verify_note(NOTE, NAME, PUB) == CP
    assert verify_note(NOTE, NAME, PUB, origin=NAME) == CP
    untimed = Checkpoint(NAME, 7, ROOT)
    assert verify_note(_signed(untimed), NAME, PUB) == untimed
    assert verify_note(_signed(untimed), NAME, PUB).time is None


def test_time_is_stored_as_utc():
    jst = dt.timezone(dt.timedelta(hours=9))
    cp = Checkpoint(NAME, 1, ROOT, dt.datetime(2025, 4, 1, 18, 30, 15, 123456, tzinfo=jst))
    assert cp.time == TIME and cp.time is not None and cp.time.utcoffset() == dt.timedelta(0)
    assert b"time 2025-04-01T09:30:15.123456Z\n" in cp.body()
    assert verify_note(_signed(cp), NAME, PUB) == cp


@settings(max_examples=50, deadline=None, database=None)
@given(
    st.text(st.characters(min_codepoint=0x20, exclude_characters="\x7f", exclude_categories=("Cs",)),
            min_size=1, max_size=40),
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.none() | st.datetimes(timezones=st.timezones(), allow_imaginary=False),
)
def test_any_checkpoint_round_trips(origin, size, root, time):
    cp = Checkpoint(origin, size, root, time)
    note = _signed(cp)
    assert parse_note(note)[0] == cp
    assert verify_note(note, NAME, PUB) == cp
    assert parse_checkpoint(cp.text()) == cp


# --- Tampering and wrong keys -------------------------------------------------------------------------------------


def _resign_free(text: str) -> str:
    """NOTE with its text replaced, the original signature kept."""
    return text + NOTE[NOTE.index("\n\n") + 1 :]


@pytest.mark.parametrize(
    "tampered",
    [
        _resign_free(Checkpoint(NAME, 12346, ROOT, TIME).text()),
        _resign_free(Checkpoint(NAME, 12344, ROOT, TIME).text()),
        _resign_free(Checkpoint(NAME, 0, ROOT, TIME).text()),
        _resign_free(Checkpoint(NAME, 12345, hashlib.sha256(b"other").digest(), TIME).text()),
        _resign_free(Checkpoint(NAME + "2", 12345, ROOT, TIME).text()),
        _resign_free(Checkpoint("other.example/log", 12345, ROOT, TIME).text()),
        _resign_free(Checkpoint(NAME, 12345, ROOT, TIME + dt.timedelta(microseconds=1)).text()),
        _resign_free(Checkpoint(NAME, 12345, ROOT).text()),  # time dropped
    ],
)
def test_tampered_checkpoints_fail(tampered):
    assert parse_note(tampered)[0] != CP
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(tampered, NAME, PUB)


def test_every_single_character_change_is_rejected():
    alphabet = "0189AZaz+/=. \n\u2014-"
    for i, c in enumerate(NOTE):
        for r in alphabet:
            if r == c:
                continue
            tampered = NOTE[:i] + r + NOTE[i + 1 :]
            with pytest.raises(ValueError):
                verify_note(tampered, NAME, PUB)
        for tampered in (NOTE[:i] + NOTE[i + 1 :], NOTE[:i] + "x" + NOTE[i:]):
            with pytest.raises(ValueError):
                verify_note(tampered, NAME, PUB)


def test_every_signature_bit_flip_is_rejected():
    _, [(name, kid, sig)] = parse_note(NOTE)
    text = NOTE[: NOTE.index("\n\n") + 1]
    for bit in range(len(sig) * 8):
        bad = bytearray(sig)
        bad[bit // 8] ^= 1 << (bit % 8)
        note = f"{text}\n\u2014 {name} {base64.b64encode(kid + bytes(bad)).decode()}\n"
        with pytest.raises(CheckpointError, match="does not verify"):
            verify_note(note, NAME, PUB)
    short = f"{text}\n\u2014 {name} {base64.b64encode(kid + sig[:-1]).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(short, NAME, PUB)


def test_wrong_key_or_name_fails():
    with pytest.raises(CheckpointError, match="no signature by"):
        verify_note(NOTE, NAME, OTHER_KEY.public_key())  # same name, other key: another key ID
    with pytest.raises(CheckpointError, match="no signature by"):
        verify_note(NOTE, "hogo.example/other", PUB)  # same key, other name: another key ID
    with pytest.raises(CheckpointError, match="no signature by"):
        verify_note(_signed(CP, OTHER_KEY), NAME, PUB)
    with pytest.raises(CheckpointError, match="is for log"):
        verify_note(NOTE, NAME, PUB, origin="hogo.example/another-log")


def test_key_id_mismatch_is_ignored_and_same_id_bad_signature_rejects():
    text = CP.text()
    sig = KEY.sign(CP.body())
    wrong_id = bytes(b ^ 0xFF for b in key_id(NAME, PUB))
    note = f"{text}\n\u2014 {NAME} {base64.b64encode(wrong_id + sig).decode()}\n"
    with pytest.raises(CheckpointError, match="no signature by"):  # name matches, key ID does not: not our key
        verify_note(note, NAME, PUB)
    forged = OTHER_KEY.sign(CP.body())
    note = f"{text}\n\u2014 {NAME} {base64.b64encode(key_id(NAME, PUB) + forged).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):  # our key ID, someone else's signature
        verify_note(note, NAME, PUB)
    # a bad line by our key rejects the note even next to a good one (signed-note: SHOULD reject the whole note)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(NOTE + note.split("\n\n")[1], NAME, PUB)


def test_other_signers_lines_are_ignored():
    witness = sign_note(CP.text(), "witness.example/w1", ed25519_signer(OTHER_KEY), OTHER_KEY.public_key())
    cosig = f"\u2014 witness.example/w2 {base64.b64encode(b'ABCD' + bytes(72)).decode()}\n"  # another signature type
    both = witness + NOTE.split("\n\n")[1] + cosig
    assert verify_note(both, NAME, PUB) == CP
    assert verify_note(both, "witness.example/w1", OTHER_KEY.public_key()) == CP
    _, sigs = parse_note(both)
    assert [(n, len(s)) for n, _, s in sigs] == [("witness.example/w1", 64), (NAME, 64), ("witness.example/w2", 72)]


# --- Verifier keys --------------------------------------------------------------------------------------------------


def test_verifier_key_round_trip():
    text = public_key_text(NAME, PUB)
    name, pub = parse_public_key_text(text)
    assert name == NAME
    assert pub.public_bytes(Encoding.Raw, PublicFormat.Raw) == PUB.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert text.split("+")[1] == key_id(NAME, PUB).hex()
    assert parse_public_key_text(GO_VERIFIER_KEY.replace("c74f20a3", "C74F20A3"))[0] == "PeterNeumann"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX", "base64|does not match"),
        ("PeterNeumann+c74f20a3+AhpdZBXbjXx6+i3oNaokpZbW4I4T5sKgJV3bBMhT4Ho0", "not an Ed25519 key"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy1w==", "not 32"),
        ("PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+0xc74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "base64"),
        ("PeterNeumann+c74f20a3", "is not <name>"),
        ("PeterNeumann", "is not <name>"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name is empty"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "contains a space"),
        ("", "is not <name>"),
    ],
)
def test_malformed_verifier_keys(text, message):
    with pytest.raises(CheckpointError, match=message):
        parse_public_key_text(text)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u3000b", "a\tb", "a\nb"])
def test_invalid_key_names(name):
    with pytest.raises(CheckpointError, match="key name"):
        public_key_text(name, PUB)
    with pytest.raises(CheckpointError, match="key name"):
        sign_checkpoint(CP, name, ed25519_signer(KEY), PUB)


# --- Signing ------------------------------------------------------------------------------------------------------


def test_signer_callback_is_checked_before_publishing():
    with pytest.raises(CheckpointError, match="does not verify with the public key"):
        sign_checkpoint(CP, NAME, ed25519_signer(OTHER_KEY), PUB)
    with pytest.raises(CheckpointError, match="64-byte"):
        sign_checkpoint(CP, NAME, lambda m: KEY.sign(m)[:63], PUB)
    calls = []

    def hsm(message: bytes) -> bytes:
        calls.append(message)
        return KEY.sign(message)

    assert sign_checkpoint(CP, NAME, hsm, PUB) == NOTE  # Ed25519 is deterministic
    assert calls == [CP.body()]
    with pytest.raises(CheckpointError, match="does not end with a newline"):
        sign_note("no newline", NAME, ed25519_signer(KEY), PUB)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origin": ""}, "origin is empty"),
        ({"origin": "a\nb"}, "control character"),
        ({"origin": "a\rb"}, "control character"),
        ({"size": -1}, "tree size"),
        ({"size": 2**64}, "tree size"),
        ({"size": True}, "tree size"),
        ({"size": "1"}, "tree size"),
        ({"root": ROOT[:31]}, "32 bytes"),
        ({"root": ROOT.hex()}, "32 bytes"),
        ({"time": dt.datetime(2025, 4, 1)}, "timezone-aware"),
    ],
)
def test_checkpoint_fields_are_validated(kwargs, message):
    fields = {"origin": NAME, "size": 1, "root": ROOT, "time": TIME, **kwargs}
    with pytest.raises(CheckpointError, match=message):
        Checkpoint(**fields)


# --- Strict parsing -------------------------------------------------------------------------------------------------

ROOT64 = base64.b64encode(ROOT).decode()
SIG_LINE = NOTE.split("\n\n")[1]


def _note(text: str) -> str:
    """``text`` validly signed, so verify_note gets past the signature to the text's own faults."""
    return sign_note(text, NAME, ed25519_signer(KEY), PUB)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (NOTE[:-1], "does not end with a newline"),
        (CP.text() + SIG_LINE, "no blank line"),
        (CP.text() + "\n", "no signature lines"),
        (NOTE + "\n", "no signature lines"),
        (NOTE.replace("\u2014", "-"), "does not start with an em dash"),
        (NOTE.replace("\u2014 ", "\u2014"), "does not start with an em dash"),
        (NOTE.replace(f"{NAME} ", f"{NAME}  "), "is not '— <key name> <base64 signature>'"),
        (NOTE[:-1] + " extra\n", "is not '— <key name> <base64 signature>'"),
        (NOTE.replace(f"{NAME} ", "a+b "), "key name"),
        (_note(CP.text()) + "\u2014 x !!!!\n", "signature line 2 is not valid base64"),
        (_note(CP.text()) + "\u2014 x QUJDRA=\n", "signature line 2 is not valid base64"),
        (_note(CP.text()) + "\u2014 x QUJDRB==\n", "signature line 2 is not canonical base64"),
        (_note(CP.text()) + "\u2014 x QUJDRA==\n", "too short"),
        (_note(CP.text()) + SIG_LINE * 100, "more than 100"),
        (NOTE.replace("\n12345\n", "\n12345\r\n"), "control character"),
        (NOTE.replace(NAME + "\n", NAME + "\t\n", 1), "control character"),
        (_note(f"{NAME}\n12345\n"), "needs origin, tree size and root hash"),
        (_note(f"{NAME}\n"), "needs origin, tree size and root hash"),
        (_note(f"\n12345\n{ROOT64}\n"), "origin is empty"),
        (_note(f"{NAME}\n012345\n{ROOT64}\n"), "not canonical decimal"),
        (_note(f"{NAME}\n00\n{ROOT64}\n"), "not canonical decimal"),
        (_note(f"{NAME}\n-1\n{ROOT64}\n"), "not a decimal number"),
        (_note(f"{NAME}\n+1\n{ROOT64}\n"), "not a decimal number"),
        (_note(f"{NAME}\n 1\n{ROOT64}\n"), "not a decimal number"),
        (_note(f"{NAME}\n1e3\n{ROOT64}\n"), "not a decimal number"),
        (_note(f"{NAME}\n1_000\n{ROOT64}\n"), "not a decimal number"),
        (_note(f"{NAME}\n\u0663\n{ROOT64}\n"), "not a decimal number"),  # ARABIC-INDIC DIGIT THREE
        (_note(f"{NAME}\n\n{ROOT64}\n"), "not a decimal number"),
        (_note(f"{NAME}\n{2**64}\n{ROOT64}\n"), "does not fit in 64 bits"),
        (_note(f"{NAME}\n1\n{ROOT64[:-1]}\n"), "root hash is not valid base64"),
        (_note(f"{NAME}\n1\n{ROOT.hex()}\n"), "root hash is 48 bytes, not 32"),
        (_note(f"{NAME}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n"), "root hash is 31 bytes, not 32"),
        (_note(f"{NAME}\n1\n{base64.urlsafe_b64encode(bytes([0xFB]) * 32).decode()}\n"), "not valid base64"),
        (_note(f"{NAME}\n1\n{base64.b64encode(ROOT).decode()[:-2]}B=\n"), "not canonical base64"),
        (_note(f"{NAME}\n1\n{ROOT64}\n\ntime 2025-04-01T09:30:15.123456Z\n"), "empty extension line"),
        (_note(f"{NAME}\n1\n{ROOT64}\nfoo bar\n"), "unknown extension line"),
        (
            _note(f"{NAME}\n1\n{ROOT64}\ntime 2025-04-01T09:30:15.123456Z\ntime 2025-04-01T09:30:15.123456Z\n"),
            "more than one",
        ),
        (_note(f"{NAME}\n1\n{ROOT64}\ntime 2025-04-01T09:30:15Z\n"), "is not YYYY-MM-DDTHH:MM:SS.ffffffZ"),
        (_note(f"{NAME}\n1\n{ROOT64}\ntime 2025-04-01T09:30:15.123456+00:00\n"), "is not YYYY-MM"),
        (_note(f"{NAME}\n1\n{ROOT64}\ntime 2025-04-01 09:30:15.123456Z\n"), "is not YYYY-MM"),
        (_note(f"{NAME}\n1\n{ROOT64}\ntime  2025-04-01T09:30:15.123456Z\n"), "is not YYYY-MM"),
        (_note(f"{NAME}\n1\n{ROOT64}\ntime 2025-02-30T09:30:15.123456Z\n"), "not a valid time"),
        (_note(f"{NAME}\n1\n{ROOT64}\ntime 2025-04-01T24:00:00.000000Z\n"), "not a valid time"),
        (_note(f"{NAME}\n1\n{ROOT64}\ntime\n"), "unknown extension line"),
        (NOTE.encode("utf-8")[:-3] + b"\xff\xfe\n", "not valid UTF-8"),
        ("", "does not end with a newline"),
        ("\n", "no blank line"),
    ],
)
def test_malformed_notes(note, message):
    with pytest.raises(CheckpointError, match=message):
        parse_note(note)
    with pytest.raises(ValueError, match=message):
        verify_note(note, NAME, PUB)


def test_parse_note_does_not_verify_but_split_note_keeps_the_exact_text():
    forged = _resign_free(Checkpoint(NAME, 99, ROOT).text())
    cp, sigs = parse_note(forged)  # parses: signatures are checked by verify_note only
    assert cp.size == 99 and len(sigs) == 1
    text, _ = split_note(NOTE)
    assert text.encode() == CP.body()
    with pytest.raises(CheckpointError, match="neither text nor bytes"):
        split_note(None)  # type: ignore[arg-type]


def test_an_origin_that_is_not_utf8_text_is_refused_when_the_checkpoint_is_made():
    """A lone surrogate cannot be signed as UTF-8: refused at construction, not at signing."""
    with pytest.raises(CheckpointError, match="UTF-8"):
        Checkpoint(origin="log/\ud800", size=0, root=bytes(32))
