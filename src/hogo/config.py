"""Instance configuration: ``$HOGO_DATA_DIR/hogo.toml`` with ``HOGO_*`` environment overrides.

Secrets are never kept here: key material lives in ``$HOGO_DATA_DIR/keys/`` (see ``crypto.keys``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

from hogo.domain.roles import Role
from hogo.errors import ConfigurationError

DEFAULT_PORT = 8700
CONFIG_FILE = "hogo.toml"


def default_data_dir() -> Path:
    return Path(os.environ.get("HOGO_DATA_DIR", "./hogo-data")).resolve()


@dataclasses.dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost. Default: RFC 9106 §4 second recommended option (t=3, m=64 MiB, p=4)."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str = ""
    demo: bool = False
    instance_name: str = "hogo"
    # Dates without a time ("until 2027-03-31") mean the end of that day in this zone.
    timezone: str = "Asia/Tokyo"
    # ANON-21: idle sessions end; absolute lifetime forces a new login.
    session_idle_timeout_s: int = 15 * 60
    session_absolute_lifetime_s: int = 8 * 3600
    # SEC-128: brute-force defence.
    lockout_threshold: int = 5
    lockout_base_s: int = 60
    lockout_max_s: int = 24 * 3600
    rate_limit_window_s: int = 300
    rate_limit_failures_per_address: int = 20
    password_min_length: int = 12
    password_max_length: int = 256
    argon2: Argon2Params = Argon2Params()
    # SEC-157: MFA per role; when trusted networks are listed, always for access from outside them.
    mfa_required_roles: tuple[str, ...] = tuple(r.value for r in Role)
    trusted_networks: tuple[str, ...] = ()
    api_token_max_days: int = 365
    max_body_bytes: int = 1024 * 1024
    cookie_secure: bool = True
    trust_proxy_headers: bool = False
    # Where the key-encryption key lives (ANON-18, SEC-151): "keyfile" (embedded) or "pkcs11" (HSM).
    key_provider: str = "keyfile"
    pkcs11_module: str = ""
    pkcs11_token_label: str = ""
    pkcs11_key_label: str = "hogo-kek"
    # Bulk import: rows per transaction in the default (non-atomic) mode.
    import_batch_rows: int = 5000
    import_max_bytes: int = 512 * 1024 * 1024
    # A CSV of at least this many bytes is validated and sealed in worker processes (other CPUs) while
    # the server writes (services/import_sealer.py); 0 workers: always in the server's process. One
    # worker suits two CPUs (the server's process is as busy writing); more only with more CPUs.
    import_workers: int = 1
    import_parallel_min_bytes: int = 1024 * 1024
    # The tamper-evident log (SEC-107(3), ANON-12): a signed checkpoint every N entries or T seconds,
    # sent to the off-host sinks (``file:/path``, ``syslog:udp://host:514``, ``https://…``; see
    # services.delivery). With sinks set, data access stops when the log has gone unanchored longer
    # than these bounds (fail closed).
    audit_checkpoint_entries: int = 1000
    audit_checkpoint_seconds: int = 60
    audit_sinks: tuple[str, ...] = ()
    audit_max_unanchored_s: int = 900
    audit_max_unanchored_entries: int = 100_000
    # Retention of log payloads by event class (prefix of the event name → days; the longest
    # matching prefix wins, "*" is the default). Leaf hashes stay for ever, so the tree verifies.
    audit_retention_days: tuple[tuple[str, int], ...] = (("*", 7 * 366),)
    # The log analysis (ANON-13, SEC-132, MN-6c): where its alerts go (sink strings as for audit_sinks,
    # plus ``smtp://…``; see services.delivery.parse_sink) and how often the scheduler runs it. The
    # rules' thresholds are not here: they live in the database, versioned and reviewed (ANON-13).
    alert_sinks: tuple[str, ...] = ()
    analysis_interval_s: int = 300
    # Take-outs (SEC-47..49, SEC-26..27): the longest a copy may stay out, and emergency take-outs without
    # prior approval (off unless allowed here), each to be reported and approved within N days.
    takeout_max_days: int = 90
    takeout_emergency_allowed: bool = False
    takeout_emergency_report_days: int = 3

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'hogo.db'}")
        for net in self.trusted_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigurationError(f"trusted_networks: {net!r} is not a network ({exc})") from exc
        unknown = set(self.mfa_required_roles) - {r.value for r in Role}
        if unknown:
            raise ConfigurationError(f"mfa_required_roles: unknown role(s) {sorted(unknown)}")
        if self.session_idle_timeout_s <= 0 or self.session_absolute_lifetime_s <= 0:
            raise ConfigurationError("session timeouts must be positive")
        if self.lockout_threshold < 1:
            raise ConfigurationError("lockout_threshold must be at least 1")
        if self.audit_checkpoint_entries < 1 or self.audit_checkpoint_seconds < 1:
            raise ConfigurationError("audit_checkpoint_entries and audit_checkpoint_seconds must be positive")
        for prefix, days in self.audit_retention_days:
            if not isinstance(prefix, str) or not isinstance(days, int) or days < 1:
                raise ConfigurationError(f"audit_retention_days: {prefix!r} must map to a positive number of days")
        if self.takeout_max_days < 1 or self.takeout_emergency_report_days < 1:
            raise ConfigurationError("takeout_max_days and takeout_emergency_report_days must be positive")
        if self.key_provider not in ("keyfile", "pkcs11"):
            raise ConfigurationError(f"key_provider must be 'keyfile' or 'pkcs11', not {self.key_provider!r}")

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_ENV_INT = {
    "HOGO_SESSION_IDLE_TIMEOUT": "session_idle_timeout_s",
    "HOGO_SESSION_ABSOLUTE_LIFETIME": "session_absolute_lifetime_s",
    "HOGO_LOCKOUT_THRESHOLD": "lockout_threshold",
}
_ENV_STR = {
    "HOGO_KEY_PROVIDER": "key_provider",
    "HOGO_PKCS11_MODULE": "pkcs11_module",
    "HOGO_PKCS11_TOKEN_LABEL": "pkcs11_token_label",
    "HOGO_PKCS11_KEY_LABEL": "pkcs11_key_label",
}


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Read ``hogo.toml`` in the data directory, then ``HOGO_*`` variables, then ``overrides``."""
    data_dir = (data_dir or default_data_dir()).resolve()
    values: dict[str, Any] = {}
    path = data_dir / CONFIG_FILE
    if path.exists():
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
        fields = {f.name for f in dataclasses.fields(Settings)}
        for key, value in raw.items():
            if key == "argon2":
                values["argon2"] = Argon2Params(**value)
            elif key == "audit_retention_days":
                if not isinstance(value, dict):
                    raise ConfigurationError(f"{path}: audit_retention_days must be a table of prefix = days")
                values[key] = tuple(value.items())
            elif key in fields:
                values[key] = tuple(value) if isinstance(value, list) else value
            else:
                raise ConfigurationError(f"{path}: unknown setting {key!r}")
    if url := os.environ.get("HOGO_DATABASE_URL"):
        values["database_url"] = url
    for env, field in _ENV_INT.items():
        if env in os.environ:
            values[field] = int(os.environ[env])
    if nets := os.environ.get("HOGO_TRUSTED_NETWORKS"):
        values["trusted_networks"] = tuple(n.strip() for n in nets.split(",") if n.strip())
    # The key provider (the PKCS#11 PIN is read from $HOGO_PKCS11_PIN by crypto.pkcs11, never kept here).
    for env, field in _ENV_STR.items():
        if value := os.environ.get(env):
            values[field] = value
    values.update(overrides)
    return Settings(data_dir=data_dir, **values)


def write_settings(settings: Settings, *, extra: dict[str, Any] | None = None) -> None:
    """Write the non-default parts of ``settings`` to ``hogo.toml`` (no secrets ever go here)."""
    defaults = Settings(data_dir=settings.data_dir)
    lines = ["# hogo instance settings. Secrets are kept in keys/, never here.\n"]
    for f in dataclasses.fields(Settings):
        if f.name in ("data_dir", "argon2", "audit_retention_days"):
            continue
        value = getattr(settings, f.name)
        if f.name == "database_url":
            if settings.is_sqlite:
                continue
            # The database password stays out of the file: give it by HOGO_DATABASE_URL, PGPASSWORD
            # or ~/.pgpass (libpq reads both).
            value = _without_password(value)
        if value != getattr(defaults, f.name):
            lines.append(f"{f.name} = {_toml(value)}\n")
    for key, value in (extra or {}).items():
        lines.append(f"{key} = {_toml(value)}\n")
    if settings.argon2 != defaults.argon2:
        a = settings.argon2
        lines.append(
            f"\n[argon2]\ntime_cost = {a.time_cost}\nmemory_cost_kib = {a.memory_cost_kib}\n"
            f"parallelism = {a.parallelism}\n"
        )
    if settings.audit_retention_days != defaults.audit_retention_days:
        lines.append("\n[audit_retention_days]\n")
        lines.extend(f"{json.dumps(prefix)} = {days}\n" for prefix, days in settings.audit_retention_days)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / CONFIG_FILE).write_text("".join(lines), encoding="utf-8")


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = urllib.parse.quote(parts.username or "", safe="")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
