"""The server refuses to start with missing or default secrets outside demo mode; demo seeds an organisation."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from hogo.bootstrap import build, check_ready_to_serve
from hogo.config import Argon2Params, load_settings
from hogo.domain.roles import Role
from hogo.errors import ConfigurationError
from hogo.services import instance
from hogo.store.models import User, UserRole

FAST = Argon2Params(time_cost=1, memory_cost_kib=64, parallelism=1)


def test_refuses_to_serve_without_key_material(tmp_path):
    with pytest.raises(ConfigurationError) as e:
        build(load_settings(tmp_path / "none", argon2=FAST))
    assert e.value.code == "missing_secret"


def test_refuses_an_uninitialised_database(tmp_path):
    from hogo.crypto import create_key_file

    s = load_settings(tmp_path / "d", argon2=FAST)
    create_key_file(s.keys_dir)
    h = build(s)
    with pytest.raises(ConfigurationError) as e:
        check_ready_to_serve(h)
    assert e.value.code == "not_initialised"


def test_demo_seeds_every_role_and_only_serves_in_demo_mode(tmp_path, database_url):
    s = load_settings(tmp_path / "demo", database_url=database_url, argon2=FAST)
    res = instance.init_instance(s, admin="admin", demo=True)
    assert res.one_time_password and res.demo_password
    reloaded = load_settings(tmp_path / "demo", database_url=database_url)
    assert reloaded.demo is True and reloaded.argon2 == FAST  # written to hogo.toml
    h = build(reloaded)
    check_ready_to_serve(h)
    with h.unit_of_work() as db:
        roles = {Role(r) for r in db.scalars(select(UserRole.role))}
        demo_users = db.scalars(select(User.username).where(User.is_demo.is_(True))).all()
    assert roles == set(Role)
    assert len(demo_users) == len(res.demo_users) >= 8
    h.close()
    # The same data outside demo mode holds published passwords: refused.
    toml = tmp_path / "demo" / "hogo.toml"
    toml.write_text(toml.read_text().replace("demo = true", "demo = false"))
    h = build(load_settings(tmp_path / "demo", database_url=database_url))
    with pytest.raises(ConfigurationError) as e:
        check_ready_to_serve(h)
    assert e.value.code == "default_secret"
    h.close()


def test_init_twice_is_refused_and_keeps_the_keys(tmp_path):
    s = load_settings(tmp_path / "d", argon2=FAST)
    instance.init_instance(s, admin="admin")
    key = (s.keys_dir / "master.key").read_bytes()
    with pytest.raises(Exception) as e:
        instance.init_instance(s, admin="admin")
    assert getattr(e.value, "code", "") == "already_initialised"
    assert (s.keys_dir / "master.key").read_bytes() == key
    assert oct(os.stat(s.data_dir).st_mode & 0o777) == "0o700"
    assert oct(os.stat(s.keys_dir / "master.key").st_mode & 0o777) == "0o600"


def test_unknown_settings_are_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "hogo.toml").write_text("idle_timeout = 5\n")
    with pytest.raises(ConfigurationError, match="unknown setting 'idle_timeout'"):
        load_settings(tmp_path / "d")


def test_a_refused_admin_password_leaves_no_half_made_instance_ANON_11(tmp_path):
    from hogo.errors import ValidationFailed

    s = load_settings(tmp_path / "d", argon2=FAST)
    with pytest.raises(ValidationFailed) as e:
        instance.init_instance(s, admin="admin", admin_password="password1234")
    assert e.value.field == "password"
    assert not (s.keys_dir / "master.key").exists() and not (s.data_dir / "hogo.toml").exists()
    res = instance.init_instance(s, admin="admin", admin_password="Kanri-Sekinin-2026!")
    assert res.otpauth_uri
