"""The embedded key provider: the instance key file, optionally sealed by a passphrase, and the KEK
derived from it that wraps data keys (ANON-18, SEC-133, SEC-151: CRYPTREC algorithms — AES-256-GCM,
Argon2id for the passphrase — keys managed and protected)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hogo.bootstrap import build
from hogo.config import Settings, load_settings
from hogo.crypto.envelope import new_wrapped_key, unwrap_file_keys
from hogo.crypto.keys import KEY_FILE_NAME, Keyring, SealError, create_key_file, is_sealed, load_keyring
from hogo.crypto.providers import KeyFileProvider
from hogo.errors import ConfigurationError, ValidationFailed
from support import TEST_ARGON2

PASSPHRASE = "Kagi-wo-mamoru-aikotoba-2026"


def _key_file(keys: Path) -> Path:
    return keys / KEY_FILE_NAME


def test_sealed_key_file_round_trip(tmp_path: Path) -> None:
    """ANON-18, SEC-151: a key file sealed by a passphrase holds the master key only encrypted
    (AES-256-GCM under an Argon2id-derived key, parameters and salt in the file); the passphrase
    opens it to the same key."""
    master = os.urandom(32)
    path = create_key_file(tmp_path / "keys", key=master, passphrase=PASSPHRASE)
    assert is_sealed(tmp_path / "keys")
    text = path.read_text(encoding="ascii")
    lines = text.splitlines()
    assert lines[0] == "hogo-master-key-v1-sealed"
    assert lines[1].startswith("argon2id v=19 t=3 m=65536 p=4 salt=")
    assert len(base64.b64decode(lines[1].split("salt=")[1])) == 16
    assert base64.b64encode(master).decode() not in text
    assert PASSPHRASE not in text
    ring = load_keyring(tmp_path / "keys", passphrase=PASSPHRASE)
    assert ring.subkey("x") == Keyring(master).subkey("x")


def test_sealing_twice_gives_different_files(tmp_path: Path) -> None:
    """SEC-151: a random salt and nonce per file — the same key and passphrase never give the same
    file."""
    master = os.urandom(32)
    a = create_key_file(tmp_path / "a", key=master, passphrase=PASSPHRASE).read_text()
    b = create_key_file(tmp_path / "b", key=master, passphrase=PASSPHRASE).read_text()
    assert a != b
    assert a.splitlines()[1] != b.splitlines()[1]


def test_sealed_key_file_refuses_a_missing_passphrase(tmp_path: Path) -> None:
    """SEC-133: a sealed key file does not open without its passphrase (``passphrase_required``)."""
    create_key_file(tmp_path / "keys", passphrase=PASSPHRASE)
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys")
    assert e.value.code == "passphrase_required"


def test_sealed_key_file_refuses_a_wrong_passphrase(tmp_path: Path) -> None:
    """SEC-133: a wrong passphrase is refused (``wrong_passphrase``) and the message does not
    repeat it."""
    create_key_file(tmp_path / "keys", passphrase=PASSPHRASE)
    wrong = "Kagi-wo-mamoru-aikotoba-2027"
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys", passphrase=wrong)
    assert e.value.code == "wrong_passphrase"
    assert wrong not in str(e.value) and PASSPHRASE not in str(e.value)


def test_passphrase_is_unicode_normalised(tmp_path: Path) -> None:
    """The same Japanese passphrase typed as composed or decomposed characters (NFC / NFD) opens the
    key file."""
    composed = "がぎぐげご-かぎのあいことば"
    decomposed = "か\u3099き\u3099く\u3099け\u3099こ\u3099-かき\u3099のあいことば"
    create_key_file(tmp_path / "keys", passphrase=composed)
    load_keyring(tmp_path / "keys", passphrase=decomposed)


@pytest.mark.parametrize("part", ["ciphertext", "salt", "cost"])
def test_tampered_sealed_key_file_is_refused(tmp_path: Path, part: str) -> None:
    """ANON-18, SEC-133: the ciphertext, the salt and the KDF parameters are all authenticated: a
    changed file does not open, even with the right passphrase."""
    path = create_key_file(tmp_path / "keys", passphrase=PASSPHRASE)
    header, params, blob = path.read_text(encoding="ascii").splitlines()
    if part == "ciphertext":
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        blob = base64.b64encode(bytes(raw)).decode()
    elif part == "salt":
        head, salt = params.split("salt=")
        raw = bytearray(base64.b64decode(salt))
        raw[0] ^= 1
        params = head + "salt=" + base64.b64encode(bytes(raw)).decode()
    else:
        params = params.replace("t=3", "t=2")
    path.write_text(f"{header}\n{params}\n{blob}\n", encoding="ascii")
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys", passphrase=PASSPHRASE)
    assert e.value.code == "wrong_passphrase"


@pytest.mark.parametrize("params", [
    "argon2id v=19 t=3 m=99999999999 p=4 salt=AAAAAAAAAAAAAAAAAAAAAA==",  # memory exhaustion
    "argon2id v=19 t=100000 m=65536 p=4 salt=AAAAAAAAAAAAAAAAAAAAAA==",  # hang
    "argon2id v=19 t=3 m=65536 p=4 salt=AAAA",  # short salt
    "argon2i v=19 t=3 m=65536 p=4 salt=AAAAAAAAAAAAAAAAAAAAAA==",  # another KDF
    "argon2id t=3 m=65536 p=4",
])
def test_damaged_sealed_key_file_is_refused_before_the_kdf_runs(tmp_path: Path, params: str) -> None:
    """A damaged key file is refused as invalid (``invalid_secret``); absurd KDF costs are not run."""
    path = create_key_file(tmp_path / "keys", passphrase=PASSPHRASE)
    header, _, blob = path.read_text(encoding="ascii").splitlines()
    path.write_text(f"{header}\n{params}\n{blob}\n", encoding="ascii")
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys", passphrase=PASSPHRASE)
    assert e.value.code == "invalid_secret"
    path.write_text(f"{header}\n{blob}\n", encoding="ascii")
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys", passphrase=PASSPHRASE)
    assert e.value.code == "invalid_secret"


def test_sealed_key_file_mode_is_checked(tmp_path: Path) -> None:
    """SEC-151: the sealed key file is made 0600 in a 0700 directory, and still refused when others
    may read it (a passphrase is no excuse for a readable key file)."""
    path = create_key_file(tmp_path / "keys", passphrase=PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    os.chmod(path, 0o640)
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys", passphrase=PASSPHRASE)
    assert e.value.code == "insecure_secret"


def test_short_passphrase_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    """ANON-18: a passphrase too short to protect the key is refused before any file is written."""
    with pytest.raises(ValidationFailed) as e:
        create_key_file(tmp_path / "keys", passphrase="short")
    assert e.value.field == "passphrase"
    assert not _key_file(tmp_path / "keys").exists()


def test_plain_key_file_is_not_sealed_and_ignores_a_passphrase(tmp_path: Path) -> None:
    """The embedded default without a passphrase keeps working; ``is_sealed`` tells them apart."""
    assert not is_sealed(tmp_path / "keys")  # no file at all
    create_key_file(tmp_path / "keys")
    assert not is_sealed(tmp_path / "keys")
    load_keyring(tmp_path / "keys", passphrase=PASSPHRASE)


def test_published_key_is_refused_even_when_sealed(tmp_path: Path) -> None:
    """SEC-151: sealing a published demo key does not make it secret."""
    create_key_file(tmp_path / "keys", key=bytes(32), passphrase=PASSPHRASE)
    with pytest.raises(ConfigurationError) as e:
        load_keyring(tmp_path / "keys", passphrase=PASSPHRASE)
    assert e.value.code == "default_secret"


def test_key_file_provider_wraps_and_binds_to_aad() -> None:
    """ANON-18, SEC-151: the key-file KEK wraps a data key with AES-256-GCM; the wrapped key opens
    only with the same KEK and the same binding (file, version, purpose), and not when altered."""
    ring = Keyring(os.urandom(32))
    provider = KeyFileProvider(ring)
    assert provider.name == "keyfile" and provider.kek_id == "kek-1"
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, aad=b"file:1|data|v1")
    assert dek not in wrapped
    assert provider.unwrap(wrapped, aad=b"file:1|data|v1") == dek
    assert KeyFileProvider(ring).unwrap(wrapped, aad=b"file:1|data|v1") == dek  # after a restart
    with pytest.raises(SealError):
        provider.unwrap(wrapped, aad=b"file:2|data|v1")
    with pytest.raises(SealError):
        provider.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), aad=b"file:1|data|v1")
    with pytest.raises(SealError):
        KeyFileProvider(Keyring(os.urandom(32))).unwrap(wrapped, aad=b"file:1|data|v1")
    with pytest.raises(SealError):
        KeyFileProvider(ring, kek_id="kek-2").unwrap(wrapped, aad=b"file:1|data|v1")


def test_key_file_provider_envelope_end_to_end(tmp_path: Path) -> None:
    """ANON-18, SEC-133: data keys wrapped by the KEK of a sealed key file survive a restart (a new
    keyring from the file and the passphrase) and still open the record."""
    create_key_file(tmp_path / "keys", passphrase=PASSPHRASE)
    provider = KeyFileProvider(load_keyring(tmp_path / "keys", passphrase=PASSPHRASE))
    keys = [new_wrapped_key(provider, 3, 1, "data"), new_wrapped_key(provider, 3, 0, "index")]
    _, blob = unwrap_file_keys(provider, 3, keys).seal_record("r1", {"name": "山田 太郎"})
    again = KeyFileProvider(load_keyring(tmp_path / "keys", passphrase=PASSPHRASE))
    assert unwrap_file_keys(again, 3, keys).open_record("r1", blob) == {"name": "山田 太郎"}


def test_build_passes_the_passphrase(tmp_path: Path) -> None:
    """The composition root opens a sealed key file with the passphrase it is given, and refuses to
    build without it."""
    settings = Settings(data_dir=tmp_path, argon2=TEST_ARGON2)
    create_key_file(settings.keys_dir, passphrase=PASSPHRASE)
    with pytest.raises(ConfigurationError) as e:
        build(settings)
    assert e.value.code == "passphrase_required"
    h = build(settings, passphrase=PASSPHRASE)
    try:
        assert h.key_provider.name == "keyfile"
    finally:
        h.close()


def _hogo(runner: CliRunner, *args: str, env: dict[str, str | None] | None = None, input: str | None = None):
    from hogo.cli.main import app

    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HOGO_")}
    clean.update(env or {})
    return runner.invoke(app, list(args), env=clean, input=input, catch_exceptions=False)


def test_cli_init_seals_and_serve_needs_the_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SEC-151: ``hogo init --passphrase-file`` seals the key file; ``hogo serve`` then refuses to
    start without the passphrase (exit 9) or with a wrong one, and starts with it from a file or
    ``$HOGO_KEY_PASSPHRASE``. The passphrase is never printed."""
    import uvicorn

    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    runner = CliRunner()
    data = tmp_path / "data"
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")
    wrong = tmp_path / "wrong"
    wrong.write_text("Kagi-wo-mamoru-aikotoba-2027\n", encoding="utf-8")

    r = _hogo(runner, "init", "--data-dir", str(data), "--passphrase-file", str(secret), "--json")
    assert r.exit_code == 0, r.output
    assert '"key_sealed": true' in r.stdout
    assert PASSPHRASE not in r.output
    assert is_sealed(data / "keys")
    assert PASSPHRASE not in (data / "hogo.toml").read_text(encoding="utf-8")

    r = _hogo(runner, "serve", "--data-dir", str(data), "--json")
    assert r.exit_code == 9
    assert "passphrase_required" in r.stdout
    r = _hogo(runner, "serve", "--data-dir", str(data), "--passphrase-file", str(wrong), "--json")
    assert r.exit_code == 9
    assert "wrong_passphrase" in r.stdout
    assert not served

    r = _hogo(runner, "serve", "--data-dir", str(data), "--passphrase-file", str(secret), "--json")
    assert r.exit_code == 0, r.output
    r = _hogo(runner, "serve", "--data-dir", str(data), "--json", env={"HOGO_KEY_PASSPHRASE": PASSPHRASE})
    assert r.exit_code == 0, r.output
    r = _hogo(runner, "serve", "--data-dir", str(data), "--passphrase-file", "-", "--json", input=PASSPHRASE + "\n")
    assert r.exit_code == 0, r.output
    assert len(served) == 3
    assert PASSPHRASE not in r.output


def test_cli_init_refuses_a_short_passphrase_before_writing(tmp_path: Path) -> None:
    """ANON-18: a short passphrase is a validation error (exit 7) and leaves no instance."""
    secret = tmp_path / "passphrase"
    secret.write_text("short\n", encoding="utf-8")
    r = _hogo(CliRunner(), "init", "--data-dir", str(tmp_path / "data"), "--passphrase-file", str(secret))
    assert r.exit_code == 7
    assert not (tmp_path / "data" / "keys" / KEY_FILE_NAME).exists()
    settings = load_settings(tmp_path / "data")
    assert not is_sealed(settings.keys_dir)
