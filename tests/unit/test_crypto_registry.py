"""The algorithm registry (SEC-133, SEC-134): every primitive hogo's source uses is registered with its
CRYPTREC status, none is marked deprecated or compromised, and the code takes its parameters from it."""

from __future__ import annotations

import ast
import datetime as dt
import importlib
from pathlib import Path

import pytest

from hogo.crypto import envelope, registry
from hogo.crypto.registry import ALGORITHMS, AlgorithmRefused, Cryptrec, HogoStatus

SRC = Path(__file__).resolve().parents[2] / "src" / "hogo"

# What a use in the source looks like → the registered algorithm it is. Anything else cryptographic
# (another hashlib function, another primitive from ``cryptography``, another PKCS#11 mechanism) is unknown.
HASHLIB = {"sha256": "sha-256"}
HASHES = {"SHA256": "hkdf-sha-256"}  # cryptography's hashes.X: only HKDF takes one
CRYPTOGRAPHY_NAMES = {
    "AESGCM": "aes-256-gcm", "Ed25519PrivateKey": "ed25519", "Ed25519PublicKey": "ed25519", "HKDF": "hkdf-sha-256",
    "ECDH": "ecdh-p256", "SECP256R1": "ecdh-p256", "EllipticCurvePrivateKey": "ecdh-p256",
    "EllipticCurvePublicKey": "ecdh-p256", "generate_private_key": "ecdh-p256",
    "PrivateFormat": None, "NoEncryption": None, "load_pem_private_key": None,
    # not algorithms: serialisation formats, exceptions, the hashes module (its members are checked above)
    "Encoding": None, "PublicFormat": None, "hashes": None, "InvalidTag": None, "InvalidSignature": None,
}
MECHANISMS = {"AES_GCM": "aes-256-gcm-keywrap"}
MODULES = {"argon2": "argon2id", "pyotp": "totp-hmac-sha-1", "hmac": "hmac-sha-256"}
DIGEST_NAMES = {"sha256", "sha1", "md5", "sha512", "sha384", "sha224", "blake2b", "sha3_256"}


def _uses(tree: ast.AST) -> tuple[set[str], list[str]]:
    """(registered algorithm IDs this module uses, unknown primitives it uses)."""
    used: set[str] = set()
    unknown: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base, attr = node.value.id, node.attr
            if base == "hashlib" and not attr.startswith("_") and attr not in ("new", "file_digest"):
                (used.add(HASHLIB[attr]) if attr in HASHLIB else unknown.append(f"hashlib.{attr}"))
            elif base == "hashes":
                (used.add(HASHES[attr]) if attr in HASHES else unknown.append(f"hashes.{attr}"))
            elif base == "Mechanism":
                (used.add(MECHANISMS[attr]) if attr in MECHANISMS else unknown.append(f"Mechanism.{attr}"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cryptography"):
            for alias in node.names:
                if alias.name not in CRYPTOGRAPHY_NAMES:
                    unknown.append(f"{node.module}.{alias.name}")
                elif CRYPTOGRAPHY_NAMES[alias.name]:
                    used.add(CRYPTOGRAPHY_NAMES[alias.name])  # type: ignore[arg-type]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                root = name.split(".")[0]
                if root in MODULES:
                    used.add(MODULES[root])
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in DIGEST_NAMES
              and node.value != "sha256"):
            unknown.append(f"digest name {node.value!r}")
    return used, unknown


def _source_uses() -> tuple[set[str], list[str]]:
    used: set[str] = set()
    unknown: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "registry.py":
            continue
        u, x = _uses(ast.parse(path.read_text(encoding="utf-8")))
        used |= u
        unknown += [f"{path.relative_to(SRC)}: {name}" for name in x]
    return used, unknown


def test_every_primitive_in_the_source_is_registered_and_not_deprecated_SEC_133_SEC_134():
    """SEC-133, SEC-134(2): the source uses only algorithms of the registry, none deprecated or compromised.
    Adding a primitive (hashlib.md5, ChaCha20, an RSA key …) fails here until it is registered with its
    CRYPTREC status."""
    used, unknown = _source_uses()
    assert not unknown, f"cryptographic primitives not in hogo.crypto.registry: {unknown}"
    assert used, "the scan found nothing: it is broken"
    for algorithm_id in used:
        a = registry.get(algorithm_id)
        assert a.hogo_status is HogoStatus.IN_USE, f"{a.name} is {a.hogo_status.value} but still used"


def test_the_scan_catches_an_unregistered_or_compromised_algorithm_SEC_134():
    """SEC-134: the check above is not vacuous — MD5, SHA-1 by name and ChaCha20 are all reported."""
    tree = ast.parse("import hashlib\nfrom cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305\n"
                     "hashlib.md5(b'x')\nhmac.digest(k, m, 'sha1')\n")
    _, unknown = _uses(tree)
    assert "hashlib.md5" in unknown and any("ChaCha20Poly1305" in u for u in unknown)
    assert "digest name 'sha1'" in unknown
    compromised = dataclasses_replace(registry.SHA_256, hogo_status=HogoStatus.COMPROMISED)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(ALGORITHMS, "sha-256", compromised)
        with pytest.raises(AlgorithmRefused):
            registry.get("sha-256")
    with pytest.raises(AlgorithmRefused):
        registry.get("md5")


def dataclasses_replace(a: registry.Algorithm, **kw: object) -> registry.Algorithm:
    import dataclasses

    return dataclasses.replace(a, **kw)  # type: ignore[arg-type]


def test_every_entry_names_its_cryptrec_status_and_why_SEC_133():
    """SEC-133: each algorithm states its CRYPTREC list, and one not recommended says why it is used."""
    for a in ALGORITHMS.values():
        assert a.cryptrec in Cryptrec and a.purpose and a.standard
        if a.cryptrec is not Cryptrec.RECOMMENDED:
            assert len(a.note) > 40, f"{a.name}: say why an algorithm off the recommended list is used"
        for module in a.used_in:
            importlib.import_module(module)
    assert registry.ED25519.cryptrec is Cryptrec.RECOMMENDED  # EdDSA: recommended since LS-0001-2022
    assert registry.TOTP_HMAC_SHA_1.cryptrec is Cryptrec.MONITORED  # SHA-1


def test_code_takes_its_parameters_from_the_registry_SEC_133():
    """SEC-133: the data-key length and the algorithm name recorded with keys come from the registry."""
    assert envelope.ALGORITHMS[envelope.ALG_AES_256_GCM] == registry.AES_256_GCM.name
    assert registry.AES_256_GCM.key_bytes == 32


def test_review_falls_due_a_year_after_the_last_SEC_134():
    """SEC-134(2): compromise information is obtained periodically — the registry says when it is due."""
    assert not registry.review_due(registry.REVIEWED_ON)
    assert registry.review_due(registry.REVIEWED_ON + dt.timedelta(days=366))
    view = registry.registry_view(registry.REVIEWED_ON)
    assert view["review_due"] is False and len(view["algorithms"]) == len(ALGORITHMS)  # type: ignore[arg-type]
