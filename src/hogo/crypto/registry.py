"""The algorithm registry (SEC-133(2), SEC-134(2), SEC-151): every cryptographic algorithm hogo uses,
what for, with which key and output lengths, and its status on the CRYPTREC list.

SEC-133 (統一基準 第133条第2項) has the algorithms and key lengths of encryption and electronic
signatures chosen from the CRYPTREC e-Government Recommended Ciphers List (電子政府推奨暗号リスト);
SEC-134(2) has their compromise (危殆化) watched. This table is the one place where hogo states both:

* each entry names the CRYPTREC list it is on — ``recommended`` (電子政府推奨暗号リスト),
  ``candidate`` (推奨候補暗号リスト), ``monitored`` (運用監視暗号リスト: kept only for compatibility) or
  ``not_listed`` (CRYPTREC does not evaluate that kind of algorithm) — with a note saying why it is
  used anyway when it is not ``recommended``;
* ``hogo_status`` is hogo's own verdict: ``in_use``, ``deprecated`` (still read, no longer written) or
  ``compromised`` (must not be used). A test (tests/unit/test_crypto_registry.py) fails when the
  source uses a primitive that is not registered, or one marked deprecated or compromised;
* ``REVIEWED_ON`` is when the table was last compared with the CRYPTREC list and advisories; the CLI
  and API flag the review as due a year later (SEC-134(2): obtain compromise information periodically).

The code that uses an algorithm takes its parameters (key length, hash name, digits) from here.

What the CRYPTREC list says, as checked for this table (CRYPTREC LS-0001-2022, 2023-03-30, and the
revisions after it): AES (128-bit block cipher), GCM (authenticated mode), SHA-256, HMAC, ECDH and EdDSA are
on the e-Government Recommended Ciphers List — EdDSA was moved there from the candidate list in the
2022 revision; SHA-1 is on the monitored list. Key derivation (HKDF), password hashing (Argon2id) and
one-time-password schemes (TOTP) are not kinds of algorithm the list covers; each is built on
recommended primitives (HMAC-SHA-256; BLAKE2b inside Argon2 is not listed) as its note says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum


class Cryptrec(StrEnum):
    RECOMMENDED = "recommended"  # 電子政府推奨暗号リスト
    CANDIDATE = "candidate"  # 推奨候補暗号リスト
    MONITORED = "monitored"  # 運用監視暗号リスト
    NOT_LISTED = "not_listed"


class HogoStatus(StrEnum):
    IN_USE = "in_use"
    DEPRECATED = "deprecated"  # read (old data), never written
    COMPROMISED = "compromised"  # must not be used at all


CRYPTREC_LABELS = {
    Cryptrec.RECOMMENDED: "電子政府推奨暗号リスト (e-Government Recommended Ciphers List)",
    Cryptrec.CANDIDATE: "推奨候補暗号リスト (Candidate Recommended Ciphers List)",
    Cryptrec.MONITORED: "運用監視暗号リスト (Monitored Ciphers List)",
    Cryptrec.NOT_LISTED: "not on the CRYPTREC lists",
}
CRYPTREC_LIST = "CRYPTREC LS-0001-2022 (2023-03-30) and its revisions"
REVIEWED_ON = dt.date(2026, 11, 22)
REVIEW_INTERVAL = dt.timedelta(days=365)


@dataclasses.dataclass(frozen=True)
class Algorithm:
    id: str
    name: str
    kind: str  # cipher, signature, hash, mac, kdf, password_hash, otp
    purpose: str
    key_bits: int | None  # secret / private key length; None when the algorithm has no key
    output_bits: int | None  # tag, digest, signature or code length
    cryptrec: Cryptrec
    note: str
    standard: str
    hogo_status: HogoStatus = HogoStatus.IN_USE
    digest: str | None = None  # the hash's name for hashlib / hmac, where one is used
    used_in: tuple[str, ...] = ()

    @property
    def key_bytes(self) -> int:
        if self.key_bits is None:
            raise ValueError(f"{self.id} has no key")
        return self.key_bits // 8

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["cryptrec"] = self.cryptrec.value
        d["cryptrec_list"] = CRYPTREC_LABELS[self.cryptrec]
        d["hogo_status"] = self.hogo_status.value
        d["used_in"] = list(self.used_in)
        return d


AES_256_GCM = Algorithm(
    "aes-256-gcm", "AES-256-GCM", "cipher", "record values, sealed secrets (TOTP), the sealed key file, "
    "backups (chunked) and key backups",
    256, 128, Cryptrec.RECOMMENDED, "AES and the GCM mode are both recommended; 96-bit random nonces.",
    "NIST SP 800-38D", used_in=("hogo.crypto.envelope", "hogo.crypto.keys", "hogo.crypto.package",
                                "hogo.crypto.backup"))
AES_256_GCM_WRAP = Algorithm(
    "aes-256-gcm-keywrap", "AES-256-GCM (key wrapping)", "cipher",
    "wrapping data keys under the KEK (key file or PKCS#11 CKM_AES_GCM)", 256, 128, Cryptrec.RECOMMENDED,
    "Keys are wrapped by AES-256-GCM encryption with associated data binding file, version and purpose.",
    "NIST SP 800-38D", used_in=("hogo.crypto.providers", "hogo.crypto.pkcs11"))
SHA_256 = Algorithm(
    "sha-256", "SHA-256", "hash", "log Merkle tree (RFC 9162), record-version hashes, token digests, bundle "
    "manifests", None, 256, Cryptrec.RECOMMENDED, "", "FIPS 180-4", digest="sha256",
    used_in=("hogo.domain.merkle", "hogo.services.integrity", "hogo.crypto.tokens", "hogo.crypto.package"))
HMAC_SHA_256 = Algorithm(
    "hmac-sha-256", "HMAC-SHA-256", "mac", "blind index of indexed fields, recovery-code MACs, webhook "
    "signatures", 256, 256, Cryptrec.RECOMMENDED, "HMAC and SHA-256 are both recommended.", "RFC 2104", digest="sha256",
    used_in=("hogo.crypto.envelope", "hogo.crypto.keys", "hogo.services.delivery"))
HKDF_SHA_256 = Algorithm(
    "hkdf-sha-256", "HKDF-SHA-256", "kdf", "sub-keys from the instance key (one key per purpose)", 256, 256,
    Cryptrec.NOT_LISTED, "Key derivation is not a category of the list; HKDF is built from HMAC-SHA-256 "
    "(recommended).", "RFC 5869 / NIST SP 800-56C", used_in=("hogo.crypto.keys", "hogo.crypto.package"))
ED25519 = Algorithm(
    "ed25519", "Ed25519 (EdDSA)", "signature", "signed log checkpoints and bundles (C2SP signed note); the "
    "record versions of integrity-2 files are committed under them", 256, 512, Cryptrec.RECOMMENDED,
    "EdDSA (Ed25519, Ed448) is on the e-Government Recommended Ciphers List since LS-0001-2022.", "RFC 8032",
    used_in=("hogo.services.audit_tree", "hogo.crypto.checkpoint"))
ARGON2ID = Algorithm(
    "argon2id", "Argon2id", "password_hash", "password hashing; the passphrases that seal the key file and key backups",
    None, 256, Cryptrec.NOT_LISTED, "Password hashing is not a category of the list; Argon2id is RFC 9106's "
    "first choice (t=3, m=64 MiB, p=4 by default; 16-byte salt, 32-byte output).", "RFC 9106",
    used_in=("hogo.crypto.passwords", "hogo.crypto.keys", "hogo.crypto.package", "hogo.crypto.backup"))
ECDH_P256 = Algorithm(
    "ecdh-p256", "ECDH (P-256)", "key_agreement", "wrapping a take-out package's content key for its recipient "
    "(ephemeral-static ECDH, then HKDF-SHA-256 and AES-256-GCM)", 256, 256, Cryptrec.RECOMMENDED,
    "ECDH is on the e-Government Recommended Ciphers List (key agreement); P-256 (secp256r1) is one of the "
    "curves it specifies.", "NIST SP 800-56A / SEC 1", used_in=("hogo.crypto.package",))
TOTP_HMAC_SHA_1 = Algorithm(
    "totp-hmac-sha-1", "TOTP (HMAC-SHA-1, 6 digits, 30 s)", "otp", "second factor at sign-in (authenticator "
    "apps)", 160, None, Cryptrec.MONITORED, "SHA-1 is on the monitored list; HMAC-SHA-1 is used only because "
    "every authenticator app implements exactly RFC 6238's default. As a MAC it is not weakened by SHA-1 "
    "collisions; the 160-bit shared secret is sealed with AES-256-GCM.", "RFC 6238", digest="sha1",
    used_in=("hogo.crypto.totp",))

ALGORITHMS: dict[str, Algorithm] = {a.id: a for a in (
    AES_256_GCM, AES_256_GCM_WRAP, SHA_256, HMAC_SHA_256, HKDF_SHA_256, ED25519, ARGON2ID, TOTP_HMAC_SHA_1,
    ECDH_P256)}


class AlgorithmRefused(Exception):
    """An algorithm that is not registered, or marked compromised, was asked for."""


def get(algorithm_id: str) -> Algorithm:
    """The registered algorithm (AlgorithmRefused when it is unknown or compromised)."""
    a = ALGORITHMS.get(algorithm_id)
    if a is None:
        raise AlgorithmRefused(f"algorithm {algorithm_id!r} is not in hogo's registry")
    if a.hogo_status is HogoStatus.COMPROMISED:
        raise AlgorithmRefused(f"algorithm {a.name} is marked compromised and must not be used (SEC-134)")
    return a


def review_due(today: dt.date) -> bool:
    """SEC-134(2): the table is compared with CRYPTREC's list and advisories at least once a year."""
    return today - REVIEWED_ON >= REVIEW_INTERVAL


def registry_view(today: dt.date) -> dict[str, object]:
    """What ``hogo crypto algorithms`` and ``GET /api/v1/crypto/algorithms`` show."""
    return {
        "cryptrec_list": CRYPTREC_LIST,
        "reviewed_on": REVIEWED_ON.isoformat(),
        "review_due": review_due(today),
        "next_review": (REVIEWED_ON + REVIEW_INTERVAL).isoformat(),
        "algorithms": [a.as_dict() for a in ALGORITHMS.values()],
    }


__all__ = [
    "AES_256_GCM",
    "ALGORITHMS",
    "ARGON2ID",
    "ECDH_P256",
    "ED25519",
    "HKDF_SHA_256",
    "HMAC_SHA_256",
    "SHA_256",
    "TOTP_HMAC_SHA_1",
    "Algorithm",
    "AlgorithmRefused",
    "Cryptrec",
    "HogoStatus",
    "get",
    "registry_view",
]
