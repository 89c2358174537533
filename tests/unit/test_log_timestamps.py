"""Log entry timestamps are read back in exactly the one form they are written in (MN-6c, MLIT-9.5.8:
an entry's bytes are its evidence, so a verifier accepts no second spelling of the same time)."""

from __future__ import annotations

import datetime as dt

import pytest

from hogo.domain.auditlog import EntryFormatError, LogEntry, decode, encode, format_ts, parse_ts


@pytest.mark.parametrize("ts", [
    dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(1999, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=9))),
])
def test_parse_ts_reads_back_what_format_ts_writes(ts: dt.datetime):
    back = parse_ts(format_ts(ts))
    assert back == ts and back.tzinfo is dt.UTC


@pytest.mark.parametrize("text", [
    "2026-04-01T00:00:00.5Z",              # strptime's %f would take 1–5 digits
    "2026-04-01T00:00:00Z",
    "2026-4-01T00:00:00.000000Z",          # and single-digit fields
    "2026-04-01T0:00:00.000000Z",
    "2026-04-01T00:00:00.000000",
    "2026-04-01T00:00:00.000000+00:00",    # fromisoformat alone would take these
    "2026-04-01 00:00:00.000000Z",
    "20260401T000000.000000Z",
    "2026-04-01",
    "２０２６-04-01T00:00:00.000000Z",      # non-ASCII digits
    "2026-13-01T00:00:00.000000Z",         # the right form, not a date
    "2026-02-30T00:00:00.000000Z",
    " 2026-04-01T00:00:00.000000Z",
    "2026-04-01T00:00:00.000000Z\n",
])
def test_parse_ts_refuses_any_other_form(text: str):
    with pytest.raises(ValueError):
        parse_ts(text)


def test_an_entry_with_another_timestamp_form_is_malformed():
    entry = encode(5, LogEntry(ts=dt.datetime(2026, 4, 1, tzinfo=dt.UTC), event="a:b:c", outcome="success"))
    assert decode(entry)[0] == 5
    with pytest.raises(EntryFormatError):
        decode(entry.replace(b"2026-04-01T00:00:00.000000Z", b"2026-04-01T00:00:00.0Z"))
    with pytest.raises(EntryFormatError):
        decode(entry.replace(b'"2026-04-01T00:00:00.000000Z"', b"20260401"))
