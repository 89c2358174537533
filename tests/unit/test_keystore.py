"""The key store (crypto/keystore.py) and key versions as buckets (crypto/envelope.py): wrapped keys kept
apart from the database, destroyed for good (SEC-50, MN-5d)."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from hogo.crypto.envelope import FileKeys, WrappedKey
from hogo.crypto.keys import SealError
from hogo.crypto.keystore import KeyStore

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


def _key(version: int, purpose: str) -> WrappedKey:
    return WrappedKey(version, purpose, "keyfile", "kek-1", os.urandom(60))


def test_put_get_destroy_and_the_bytes_are_gone_from_the_file_SEC_50(tmp_path: Path):
    store = KeyStore(tmp_path / "keys" / "keystore.db")
    keys = [_key(v, p) for v in (1, 2, 3) for p in ("data", "index")]
    store.put(7, keys, algorithm="AES-256-GCM", now=NOW)
    store.put(8, [_key(1, "data")], algorithm="AES-256-GCM", now=NOW)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert sorted(store.get(7), key=lambda k: (k.purpose, k.version)) == sorted(keys, key=lambda k: (k.purpose,
                                                                                                      k.version))
    assert store.max_version(7) == 3 and store.max_version(9) == 0
    with pytest.raises(Exception):  # a version is never overwritten
        store.put(7, [_key(1, "data")], algorithm="AES-256-GCM", now=NOW)
    assert store.destroy(7, [1, 9]) == [1]
    assert store.versions(7) == {("data", 2), ("index", 2), ("data", 3), ("index", 3)}
    raw = store.raw_bytes() + (store.path.with_name("keystore.db-journal").read_bytes()
                               if store.path.with_name("keystore.db-journal").exists() else b"")
    assert keys[0].wrapped not in raw and keys[1].wrapped not in raw  # overwritten, not just unlinked
    assert keys[2].wrapped in raw
    assert store.destroy(7) == [2, 3] and store.get(7) == [] and len(store.get(8)) == 1


def test_a_file_made_before_buckets_shares_one_index_key_across_its_data_versions_MN_5d():
    """Data versions 1 and 2 (a rotation) with the one index key of version 1: erasing in either must take
    both (the index key cannot go while another version's records are indexed with it)."""
    legacy = FileKeys(7, {1: os.urandom(32), 2: os.urandom(32)}, {1: os.urandom(32)})
    assert legacy.index_version(2) == 1 and legacy.sharing_index(2) == frozenset({1, 2})
    assert len(legacy.blind_indexes("my_number", "123456789018")) == 1
    buckets = FileKeys(7, {1: os.urandom(32), 2: os.urandom(32)}, {1: os.urandom(32), 2: os.urandom(32)})
    assert buckets.sharing_index(2) == frozenset({2})
    digests = buckets.blind_indexes("my_number", "123456789018")
    assert len(digests) == 2 and buckets.blind_index("my_number", "123456789018", 1) == digests[0]
    with pytest.raises(SealError):
        FileKeys(7, {1: os.urandom(32)}, {1: os.urandom(32)}, current_version=5)


def test_a_destroyed_version_cannot_come_back_from_an_old_database_SEC_50(tmp_path: Path):
    """Moving keys in from a database restored from before the key store (``replace``) skips versions
    destroyed since; a fresh file's leftovers are cleared without being remembered."""
    store = KeyStore(tmp_path / "keystore.db")
    old = [_key(1, "data"), _key(1, "index"), _key(2, "data"), _key(2, "index")]
    store.put(7, old, algorithm="AES-256-GCM", now=NOW)
    store.destroy(7, [1])
    store.put(7, old, algorithm="AES-256-GCM", now=NOW, replace=True)  # a restored file_keys table
    assert store.versions(7) == {("data", 2), ("index", 2)}
    store.destroy(7)
    store.put(7, old, algorithm="AES-256-GCM", now=NOW, replace=True)
    assert store.versions(7) == set()
    store.destroy(8, remember=False)
    store.put(8, old[:2], algorithm="AES-256-GCM", now=NOW, replace=True)
    assert store.versions(8) == {("data", 1), ("index", 1)}
