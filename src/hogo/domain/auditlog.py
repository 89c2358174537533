"""The canonical, versioned encoding of log entries (MN-3b, SEC-107(2), MLIT-9.5.4, ANON-12).

An entry is the bytes ``hogo-log/1 <seq> <json>``: a version tag, the entry's index in the log
(decimal), one space, then a JSON object with sorted keys, no insignificant whitespace, UTF-8, every
key present (null when empty). The Merkle leaf is SHA-256(0x00 ‖ these bytes); a verifier never
re-encodes, it hashes the stored bytes, so the JSON need only be parseable, not re-creatable. The
index inside the entry is what lets a verifier tell a missing, inserted or reordered entry apart.

Keys of the JSON object (version 1):
``ts`` (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``), ``event`` (``source:subject:action``), ``outcome``
(success / failure / denied), ``reason``, ``actor_id``, ``actor``, ``subject_user_id``, ``target``,
``file``, ``purpose``, ``records`` (record IDs, i.e. persons), ``fields``, ``client``, ``session``,
``details`` (an object).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any

VERSION_TAG = b"hogo-log/1 "
_TAG = VERSION_TAG.decode()
TILE_HEIGHT = 8  # audit_nodes holds complete-subtree roots at levels 8, 16, 24, …


class EntryFormatError(ValueError):
    pass


# Not frozen: a frozen dataclass sets each of its 15 fields through object.__setattr__, which made
# creating an entry six times slower on the append path. Entries are built once and never changed.
@dataclasses.dataclass(slots=True)
class LogEntry:
    ts: dt.datetime
    event: str
    outcome: str
    reason: str | None = None
    actor_id: int | None = None
    actor: str | None = None
    subject_user_id: int | None = None
    target: str | None = None
    file: str | None = None
    purpose: str | None = None
    records: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    client: str | None = None
    session: str | None = None
    details: dict[str, Any] | None = None


def format_ts(ts: dt.datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("log timestamps must be timezone-aware")
    if ts.tzinfo is not dt.UTC:
        ts = ts.astimezone(dt.UTC)
    # YYYY-MM-DDTHH:MM:SS.ffffffZ (%-formatting: the same text as strftime, several times faster)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (half the cost of the f-string)
        ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, ts.microsecond)


_TS_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def parse_ts(text: str) -> dt.datetime:
    """``format_ts``'s text back, accepting exactly its form YYYY-MM-DDTHH:MM:SS.ffffffZ (checked first:
    ``fromisoformat`` alone takes other ISO 8601 forms too; it is several times faster than strptime)."""
    if not _TS_FORM.fullmatch(text):
        raise ValueError(f"not a log timestamp (YYYY-MM-DDTHH:MM:SS.ffffffZ): {text!r}")
    return dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=dt.UTC)


_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode
_esc = json.encoder.encode_basestring  # a JSON string literal, as _JSON writes it (non-ASCII kept)


def _body(e: LogEntry, ts_text: str) -> dict[str, Any]:
    return {
        "ts": ts_text, "event": e.event, "outcome": e.outcome, "reason": e.reason, "actor_id": e.actor_id,
        "actor": e.actor, "subject_user_id": e.subject_user_id, "target": e.target, "file": e.file,
        "purpose": e.purpose, "records": list(e.records), "fields": list(e.fields), "client": e.client,
        "session": e.session, "details": e.details,
    }


def _fast_json(e: LogEntry, ts: str) -> str:
    """The entry's JSON object written directly, keys in sorted order: the same text as ``_JSON`` of
    ``_body`` (a test holds the two equal) at about half the cost — appends are the hot path. ``ts``
    is ``format_ts``'s text (digits and punctuation: nothing to escape)."""
    a, c, f, p, r, s, t = e.actor, e.client, e.file, e.purpose, e.reason, e.session, e.target
    ai, su = e.actor_id, e.subject_user_id
    if (ai is not None and type(ai) is not int) or (su is not None and type(su) is not int):
        raise TypeError("not an int")
    return (
        f'{{"actor":{"null" if a is None else _esc(a)},"actor_id":{"null" if ai is None else ai},'
        f'"client":{"null" if c is None else _esc(c)},'
        f'"details":{"null" if e.details is None else _JSON(e.details)},"event":{_esc(e.event)},'
        f'"fields":[{",".join(map(_esc, e.fields))}],"file":{"null" if f is None else _esc(f)},'
        f'"outcome":{_esc(e.outcome)},"purpose":{"null" if p is None else _esc(p)},'
        f'"reason":{"null" if r is None else _esc(r)},"records":[{",".join(map(_esc, e.records))}],'
        f'"session":{"null" if s is None else _esc(s)},"subject_user_id":{"null" if su is None else su},'
        f'"target":{"null" if t is None else _esc(t)},"ts":"{ts}"}}'
    )


def encode(seq: int, e: LogEntry, ts_text: str | None = None) -> bytes:
    """``ts_text``: ``format_ts(e.ts)`` when the caller has it already."""
    ts = ts_text or format_ts(e.ts)
    try:
        text = _fast_json(e, ts)
    except TypeError:  # a value of an unexpected type: the general encoder says what it makes of it
        text = _JSON(_body(e, ts))
    return f"{_TAG}{seq} {text}".encode()


def entry_seq(entry: bytes) -> int:
    """The index an entry claims, read without parsing its JSON (the verifier's fast path)."""
    if not entry.startswith(VERSION_TAG):
        raise EntryFormatError("not a version-1 log entry")
    end = entry.find(b" ", len(VERSION_TAG))
    digits = entry[len(VERSION_TAG):end]
    if end < 0 or not digits.isdigit() or (len(digits) > 1 and digits[:1] == b"0"):
        raise EntryFormatError("the entry's index is malformed")
    return int(digits)


def decode(entry: bytes) -> tuple[int, LogEntry]:
    seq = entry_seq(entry)
    start = entry.index(b" ", len(VERSION_TAG)) + 1
    try:
        body = json.loads(entry[start:].decode("utf-8"))
        return seq, LogEntry(
            ts=parse_ts(body["ts"]), event=body["event"], outcome=body["outcome"], reason=body["reason"],
            actor_id=body["actor_id"], actor=body["actor"], subject_user_id=body["subject_user_id"],
            target=body["target"], file=body["file"], purpose=body["purpose"], records=tuple(body["records"]),
            fields=tuple(body["fields"]), client=body["client"], session=body["session"], details=body["details"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EntryFormatError(f"the entry's body is malformed ({type(exc).__name__})") from None


def as_dict(seq: int, e: LogEntry) -> dict[str, Any]:
    """The entry as the API and bundles show it."""
    return {"seq": seq, **{f.name: getattr(e, f.name) for f in dataclasses.fields(e)},
            "ts": format_ts(e.ts), "records": list(e.records), "fields": list(e.fields)}
