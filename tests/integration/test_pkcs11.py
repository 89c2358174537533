"""The PKCS#11 key provider against a real SoftHSM2 token (ANON-18, SEC-133, SEC-151: the KEK is an
AES-256 key that never leaves the HSM; data keys are wrapped by AES-GCM inside it).

SoftHSM2 comes from Debian (``apt-get install softhsm2``; ``.ci/run`` installs it). Without it these
tests skip on a developer machine and fail in CI (``CI=true``), like the PostgreSQL tests. Each
pytest process makes one fresh token in a temporary directory (``SOFTHSM2_CONF``): the library reads
its configuration once, when it is first loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from typer.testing import CliRunner

from hogo.bootstrap import build
from hogo.clock import FakeClock
from hogo.config import Settings, load_settings
from hogo.crypto.envelope import new_wrapped_key, unwrap_file_keys
from hogo.crypto.factory import build_key_provider
from hogo.crypto.keys import Keyring, SealError, create_key_file
from hogo.crypto.pkcs11 import PIN_ENV, Pkcs11Provider, ensure_kek
from hogo.crypto.providers import KeyFileProvider
from hogo.errors import ConfigurationError
from hogo.services import audit_access, backups, instance
from support import ADMIN, ADMIN_PASSWORD, TEST_ARGON2

MODULE = os.environ.get("HOGO_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "hogo-test"
PIN = "1234"
SO_PIN = "5678"
KEK = "hogo-kek"


def softhsm_or_skip() -> str:
    util = shutil.which("softhsm2-util")
    if util is None or not Path(MODULE).is_file():
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is not installed: CI must run the PKCS#11 tests (apt-get install softhsm2)")
        pytest.skip("no SoftHSM2 (apt-get install softhsm2 to run these)")
    return util


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh SoftHSM2 token labelled ``hogo-test`` (user PIN 1234) holding the KEK ``hogo-kek``."""
    util = softhsm_or_skip()
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run([util, "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN],
                       check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)})
        assert ensure_kek(MODULE, TOKEN, PIN, KEK) is True
        yield TOKEN


@pytest.fixture
def provider(token: str) -> Iterator[Pkcs11Provider]:
    p = Pkcs11Provider(module=MODULE, token_label=token, pin=PIN, key_label=KEK)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def hsm_settings(tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv(PIN_ENV, PIN)
    return Settings(data_dir=tmp_path, key_provider="pkcs11", pkcs11_module=MODULE, pkcs11_token_label=token,
                    argon2=TEST_ARGON2)


@contextlib.contextmanager
def raw_session(token_label: str) -> Iterator[pkcs11.Session]:
    """A plain python-pkcs11 session, to look at the token the way an attacker with the PIN would."""
    tok = pkcs11.lib(MODULE).get_token(token_label=token_label)
    try:
        session = tok.open(user_pin=PIN)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        session = tok.open()  # this process is logged in already (a provider's session)
    try:
        yield session
    finally:
        session.close()


def test_ensure_kek_is_idempotent(token: str) -> None:
    """ANON-18: ``hogo init`` makes the KEK once; a second call finds it and leaves it alone."""
    assert ensure_kek(MODULE, token, PIN, KEK) is False
    assert ensure_kek(MODULE, token, PIN, "hogo-kek-2") is True
    assert ensure_kek(MODULE, token, PIN, "hogo-kek-2") is False


def test_kek_is_aes256_sensitive_and_never_extractable(token: str) -> None:
    """SEC-151: the KEK is an AES-256 key generated in the token that can never be read out: sensitive,
    not extractable, always sensitive and never extractable since it was made; reading its value fails."""
    with raw_session(token) as s:
        key = s.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=KEK)
        assert key.key_length == 256
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.ALWAYS_SENSITIVE] is True
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        assert key[Attribute.TOKEN] is True and key[Attribute.PRIVATE] is True
        assert key[Attribute.WRAP] is False and key[Attribute.DERIVE] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]


def test_wrap_unwrap_round_trip(provider: Pkcs11Provider) -> None:
    """ANON-18, SEC-133: a data key wrapped in the HSM (version byte + 96-bit IV + AES-GCM ciphertext
    and tag) unwraps to itself; each wrap uses a fresh IV."""
    assert provider.name == "pkcs11" and provider.kek_id == "pkcs11:hogo-kek"
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, aad=b"file:1|data|v1")
    assert wrapped[:1] == b"\x01" and len(wrapped) == 1 + 12 + 32 + 16
    assert dek not in wrapped
    assert provider.wrap(dek, aad=b"file:1|data|v1") != wrapped
    assert provider.unwrap(wrapped, aad=b"file:1|data|v1") == dek


def test_unwrap_fails_with_wrong_aad_or_tampering(provider: Pkcs11Provider, token: str) -> None:
    """SEC-133: the wrapped key is bound to its file, version and purpose; a different binding, a
    changed byte, a truncated value or another KEK make it fail (SealError naming no secret)."""
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, aad=b"file:1|data|v1")
    bad = [
        (wrapped, b"file:2|data|v1"),
        (wrapped, b"file:1|index|v1"),
        (wrapped[:-1] + bytes([wrapped[-1] ^ 1]), b"file:1|data|v1"),
        (wrapped[:5] + bytes([wrapped[5] ^ 1]) + wrapped[6:], b"file:1|data|v1"),  # the IV
        (wrapped[:20], b"file:1|data|v1"),
        (b"\x02" + wrapped[1:], b"file:1|data|v1"),
    ]
    for value, aad in bad:
        with pytest.raises(SealError) as e:
            provider.unwrap(value, aad=aad)
        assert PIN not in str(e.value)
    ensure_kek(MODULE, token, PIN, "hogo-kek-other")
    other = Pkcs11Provider(module=MODULE, token_label=token, pin=PIN, key_label="hogo-kek-other")
    try:
        with pytest.raises(SealError):
            other.unwrap(wrapped, aad=b"file:1|data|v1")
    finally:
        other.close()
    assert provider.unwrap(wrapped, aad=b"file:1|data|v1") == dek


def test_envelope_end_to_end_through_the_hsm(provider: Pkcs11Provider, token: str) -> None:
    """ANON-18, SEC-133, SEC-151: a file's data and index keys wrapped by the HSM open its records —
    also after a restart (a new session) — and are refused by another provider."""
    keys = [new_wrapped_key(provider, 7, 1, "data"), new_wrapped_key(provider, 7, 0, "index")]
    assert all(k.provider == "pkcs11" and k.kek_id == "pkcs11:hogo-kek" for k in keys)
    fk = unwrap_file_keys(provider, 7, keys)
    version, blob = fk.seal_record("rec-1", {"name": "山田 太郎", "my_number": "123456789018"})
    assert version == 1 and "山田".encode() not in blob
    provider.close()
    restarted = Pkcs11Provider(module=MODULE, token_label=token, pin=PIN, key_label=KEK)
    try:
        again = unwrap_file_keys(restarted, 7, keys)
        assert again.open_record("rec-1", blob) == {"name": "山田 太郎", "my_number": "123456789018"}
        assert again.blind_index("name", "山田 太郎") == fk.blind_index("name", "山田 太郎")
        with pytest.raises(SealError):
            unwrap_file_keys(restarted, 8, keys)  # the keys of file 7 presented as file 8's
    finally:
        restarted.close()
    with pytest.raises(SealError):
        unwrap_file_keys(KeyFileProvider(Keyring(os.urandom(32))), 7, keys)


def test_provider_is_thread_safe_and_survives_another_session_logging_out(provider: Pkcs11Provider,
                                                                          token: str) -> None:
    """One session, many threads: the lock serialises use. When another session of the process logs
    out (PKCS#11 login state is per process), the provider reopens its session and carries on."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                dek = os.urandom(32)
                assert provider.unwrap(provider.wrap(dek, aad=b"t"), aad=b"t") == dek
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    other = Pkcs11Provider(module=MODULE, token_label=token, pin=PIN, key_label=KEK)
    wrapped = other.wrap(b"k" * 32, aad=b"x")
    other.close()  # logs the process out of the token
    assert provider.unwrap(wrapped, aad=b"x") == b"k" * 32


def test_build_key_provider_makes_the_pkcs11_provider(hsm_settings: Settings) -> None:
    """``key_provider = "pkcs11"`` builds the HSM provider, the PIN coming from $HOGO_PKCS11_PIN."""
    p = build_key_provider(hsm_settings, Keyring(os.urandom(32)))
    try:
        assert isinstance(p, Pkcs11Provider)
        assert p.unwrap(p.wrap(b"x" * 32, aad=b"a"), aad=b"a") == b"x" * 32
        assert PIN not in repr(p)
    finally:
        p.close()


def test_settings_from_environment_select_the_hsm(tmp_path: Path, token: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """$HOGO_KEY_PROVIDER, $HOGO_PKCS11_MODULE, $HOGO_PKCS11_TOKEN_LABEL choose the HSM; the composition
    root then wraps data keys there."""
    monkeypatch.setenv("HOGO_KEY_PROVIDER", "pkcs11")
    monkeypatch.setenv("HOGO_PKCS11_MODULE", MODULE)
    monkeypatch.setenv("HOGO_PKCS11_TOKEN_LABEL", token)
    monkeypatch.setenv(PIN_ENV, PIN)
    settings = load_settings(tmp_path, argon2=TEST_ARGON2)
    assert (settings.key_provider, settings.pkcs11_module, settings.pkcs11_token_label) == ("pkcs11", MODULE, token)
    create_key_file(settings.keys_dir)
    h = build(settings)
    try:
        assert h.key_provider.name == "pkcs11"
    finally:
        p = h.key_provider
        assert isinstance(p, Pkcs11Provider)
        p.close()
        h.close()


@pytest.mark.parametrize(("change", "code"), [
    ({"pin": "9999"}, "wrong_pin"),
    ({"pin": None}, "missing_secret"),
    ({"pkcs11_key_label": "no-such-key"}, "pkcs11_key_not_found"),
    ({"pkcs11_token_label": "no-such-token"}, "pkcs11_token_not_found"),
    ({"pkcs11_token_label": ""}, "pkcs11_token_not_found"),
    ({"pkcs11_module": ""}, "pkcs11_unavailable"),
    ({"pkcs11_module": "/nonexistent/libpkcs11.so"}, "pkcs11_unavailable"),
])
def test_build_key_provider_refuses_a_bad_configuration(hsm_settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                        change: dict[str, str | None], code: str) -> None:
    """SEC-151: the server does not start on a PKCS#11 configuration that cannot work — a wrong or
    missing PIN, an absent key or token, no module — and says which (never showing the PIN)."""
    change = dict(change)
    if "pin" in change:
        pin = change.pop("pin")
        if pin is None:
            monkeypatch.delenv(PIN_ENV)
        else:
            monkeypatch.setenv(PIN_ENV, pin)
    with pytest.raises(ConfigurationError) as e:
        build_key_provider(hsm_settings.with_(**change), Keyring(os.urandom(32)))
    assert e.value.code == code
    assert PIN not in str(e.value) and "9999" not in str(e.value)


def test_wrong_pin_is_refused_while_the_process_is_logged_in(provider: Pkcs11Provider, token: str) -> None:
    """SEC-151: PKCS#11 shares one login per process; a second provider with a wrong PIN is still
    refused while the first is logged in, and one with the right PIN shares the login."""
    with pytest.raises(ConfigurationError) as e:
        Pkcs11Provider(module=MODULE, token_label=token, pin="9999", key_label=KEK)
    assert e.value.code == "wrong_pin"
    second = Pkcs11Provider(module=MODULE, token_label=token, pin=PIN, key_label=KEK)
    try:
        assert second.unwrap(provider.wrap(b"z" * 32, aad=b"a"), aad=b"a") == b"z" * 32
    finally:
        second.close()


def test_cli_init_creates_the_kek_in_the_token(tmp_path: Path, token: str) -> None:
    """ANON-18: ``hogo init`` with key_provider pkcs11 (from the environment) creates the KEK in the token
    and records the provider in hogo.toml — never the PIN. A wrong PIN stops it before anything is
    written."""
    from hogo.cli.main import app

    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HOGO_")}
    env.update({"HOGO_KEY_PROVIDER": "pkcs11", "HOGO_PKCS11_MODULE": MODULE, "HOGO_PKCS11_TOKEN_LABEL": token,
                "HOGO_PKCS11_KEY_LABEL": "hogo-kek-cli", PIN_ENV: "9999"})
    runner = CliRunner()
    r = runner.invoke(app, ["init", "--data-dir", str(tmp_path / "bad"), "--json"], env=env, catch_exceptions=False)
    assert r.exit_code == 9 and "wrong_pin" in r.stdout
    assert not (tmp_path / "bad" / "keys").exists()

    env[PIN_ENV] = PIN
    r = runner.invoke(app, ["init", "--data-dir", str(tmp_path / "data"), "--json"], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert '"key_provider": "pkcs11"' in r.stdout
    toml = (tmp_path / "data" / "hogo.toml").read_text(encoding="utf-8")
    assert 'key_provider = "pkcs11"' in toml and 'pkcs11_key_label = "hogo-kek-cli"' in toml
    stored = tomllib.loads(toml)
    assert PIN not in [str(v) for v in stored.values()] and not [k for k in stored if "pin" in k]
    assert ensure_kek(MODULE, token, PIN, "hogo-kek-cli") is False  # it exists now


def test_the_key_store_keeps_hsm_wrapped_keys_and_destroying_them_shreds_SEC_50(provider: Pkcs11Provider,
                                                                             tmp_path: Path) -> None:
    """Issue 5: with the HSM the KEK still wraps and the key store holds only the wrapped blobs; a version
    destroyed there no longer opens what it sealed, HSM or not."""
    import datetime as dt

    from hogo.crypto.keystore import KeyStore

    store = KeyStore(tmp_path / "keys" / "keystore.db")
    now = dt.datetime.now(dt.UTC)
    for v in (1, 2):
        store.put(7, [new_wrapped_key(provider, 7, v, p) for p in ("data", "index")], algorithm="AES-256-GCM",
                  now=now)
    fk = unwrap_file_keys(provider, 7, store.get(7), 1)
    _, blob = fk.seal_record("rec-1", {"name": "山田 太郎"})
    assert unwrap_file_keys(provider, 7, store.get(7), 2).open_record("rec-1", blob) == {"name": "山田 太郎"}
    store.destroy(7, [1])
    with pytest.raises(SealError):
        unwrap_file_keys(provider, 7, store.get(7), 2).open_record("rec-1", blob)


# Backups of an instance whose KEK is in the HSM (here, beside the session's one token: SoftHSM reads its
# configuration once per process, so a second token fixture in another module would not be seen).
def test_backup_content_key_is_wrapped_by_the_hsm_kek_ANON_19_SEC_151(hsm_settings: Settings, tmp_path: Path):
    settings = hsm_settings.with_(data_dir=tmp_path / "data")
    clock = FakeClock()
    instance.init_instance(settings, admin=ADMIN, admin_password=ADMIN_PASSWORD, clock=clock)
    hogo = build(settings, clock=clock)
    try:
        made = backups.create_backup(hogo, None, [tmp_path / "bk"])
        directory = Path(made["targets"][0])
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["content_key"]["provider"] == "pkcs11"
        assert manifest["content_key"]["kek_id"] == hogo.key_provider.kek_id
        assert backups.verify_backup(hogo, None, directory=directory)["ok"]
        hogo.close()
        backups.restore_backup(hogo, directory, confirm=True)
        assert audit_access.verify(hogo, None).ok
    finally:
        hogo.close()
