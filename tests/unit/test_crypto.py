"""Key material, sealing, tokens, TOTP (ANON-11 credentials protected; ANON-18 CRYPTREC algorithms)."""

import datetime as dt
import os

import pytest

from hogo.crypto import create_key_file, load_keyring, new_token, token_digest
from hogo.crypto import totp as totp_mod
from hogo.crypto.keys import Keyring, SealError
from hogo.crypto.passwords import PasswordHasher
from hogo.errors import ConfigurationError


def test_key_file_is_private_and_loads(tmp_path):
    path = create_key_file(tmp_path / "keys")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "keys").stat().st_mode & 0o777) == "0o700"
    ring = load_keyring(tmp_path / "keys")
    assert len(ring.subkey("x")) == 32


def test_server_refuses_missing_key(tmp_path):
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys")
    assert e.value.code == "missing_secret"


def test_server_refuses_key_readable_by_others(tmp_path):
    path = create_key_file(tmp_path / "keys")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys")
    assert e.value.code == "insecure_secret"


def test_server_refuses_published_default_key_outside_demo(tmp_path):
    create_key_file(tmp_path / "keys", key=bytes(32))
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys")
    assert e.value.code == "default_secret"
    assert load_keyring(tmp_path / "keys", allow_published=True).is_published


def test_key_file_is_never_overwritten(tmp_path):
    create_key_file(tmp_path / "keys")
    with pytest.raises(ConfigurationError):
        create_key_file(tmp_path / "keys")


def test_sealed_values_are_bound_to_purpose_and_context():
    ring = Keyring(os.urandom(32))
    sealed = ring.seal("totp-secret", b"JBSWY3DPEHPK3PXP", aad=b"user:1")
    assert b"JBSWY3DPEHPK3PXP" not in sealed
    assert ring.open("totp-secret", sealed, aad=b"user:1") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(SealError):
        ring.open("totp-secret", sealed, aad=b"user:2")  # moved to another user
    with pytest.raises(SealError):
        ring.open("other", sealed, aad=b"user:1")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        ring.open("totp-secret", tampered, aad=b"user:1")
    with pytest.raises(SealError):
        Keyring(os.urandom(32)).open("totp-secret", sealed, aad=b"user:1")


def test_tokens_are_random_prefixed_and_stored_as_digests():
    a, b = new_token("hgs"), new_token("hgs")
    assert a != b and a.startswith("hgs_") and len(a) > 40
    assert token_digest(a) != a and len(token_digest(a)) == 64


def test_argon2id_hash_verifies_and_unknown_user_path_is_false():
    h = PasswordHasher(time_cost=1, memory_cost_kib=64, parallelism=1)
    stored = h.hash("Sakura-Kumo-Umi-47")
    assert stored.startswith("$argon2id$")
    assert h.verify(stored, "Sakura-Kumo-Umi-47")
    assert not h.verify(stored, "wrong")
    assert not h.verify(None, "Sakura-Kumo-Umi-47")
    assert not h.verify("garbage", "x")


def test_production_argon2_parameters_follow_rfc_9106():
    from hogo.config import Argon2Params

    p = Argon2Params()
    assert (p.time_cost, p.memory_cost_kib, p.parallelism) == (3, 65536, 4)


# RFC 6238 appendix B uses an 8-digit SHA-1 vector; with 6 digits the same steps give its last six.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"


@pytest.mark.parametrize(
    ("unix", "code"),
    [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"), (1234567890, "005924"),
     (2000000000, "279037")],
)
def test_totp_matches_rfc_6238_vectors(unix, code):
    now = dt.datetime.fromtimestamp(unix, dt.UTC)
    assert totp_mod.current_code(RFC_SECRET, now) == code
    assert totp_mod.verify(RFC_SECRET, code, now=now, last_step=None) == unix // 30


def test_totp_accepts_one_step_of_clock_drift_and_refuses_replay():
    now = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    code = totp_mod.current_code(RFC_SECRET, now)
    step = totp_mod.verify(RFC_SECRET, code, now=now + dt.timedelta(seconds=30), last_step=None)
    assert step == int(now.timestamp()) // 30
    assert totp_mod.verify(RFC_SECRET, code, now=now, last_step=step) is None  # replay
    assert totp_mod.verify(RFC_SECRET, code, now=now + dt.timedelta(seconds=90), last_step=None) is None
    assert totp_mod.verify(RFC_SECRET, "12345", now=now, last_step=None) is None
    assert totp_mod.verify(RFC_SECRET, "abcdef", now=now, last_step=None) is None
