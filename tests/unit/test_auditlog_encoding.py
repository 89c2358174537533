"""The canonical encoding of log entries (MN-3b, SEC-107(2), MLIT-9.5.4): the hand-written fast
encoder must produce exactly the bytes of the documented rule (JSON, sorted keys, no whitespace,
UTF-8, every key present) for any entry, and round-trip through ``decode``."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from hogo.domain.auditlog import VERSION_TAG, LogEntry, decode, encode, format_ts

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
maybe_text = st.none() | text
maybe_int = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
details = st.none() | st.dictionaries(
    st.text(alphabet="abcdefghij_", min_size=1, max_size=8),
    st.none() | st.booleans() | st.integers() | text | st.lists(text, max_size=3),
    max_size=4,
)
times = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC))
entries = st.builds(
    LogEntry, ts=times, event=text, outcome=text, reason=maybe_text, actor_id=maybe_int, actor=maybe_text,
    subject_user_id=maybe_int, target=maybe_text, file=maybe_text, purpose=maybe_text,
    records=st.lists(text, max_size=4).map(tuple), fields=st.lists(text, max_size=4).map(tuple),
    client=maybe_text, session=maybe_text, details=details,
)


def reference(seq: int, e: LogEntry) -> bytes:
    """The rule as the module docstring states it, with the standard library's encoder."""
    body = {
        "ts": e.ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "event": e.event, "outcome": e.outcome,
        "reason": e.reason, "actor_id": e.actor_id, "actor": e.actor, "subject_user_id": e.subject_user_id,
        "target": e.target, "file": e.file, "purpose": e.purpose, "records": list(e.records),
        "fields": list(e.fields), "client": e.client, "session": e.session, "details": e.details,
    }
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return VERSION_TAG + str(seq).encode() + b" " + text.encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(seq=st.integers(min_value=0, max_value=10**12), e=entries)
def test_fast_encoding_is_byte_for_byte_the_canonical_one_MN_3b(seq: int, e: LogEntry):
    assert encode(seq, e) == reference(seq, e)
    got_seq, got = decode(encode(seq, e))
    assert got_seq == seq and got == e


def test_control_characters_quotes_and_japanese_text_are_escaped_as_json_does():
    e = LogEntry(ts=dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))), event='a"b\\c',
                 outcome="success", purpose="源泉徴収票作成事務\n\t\x00", records=("R\u2028", '"'), fields=("氏名",))
    assert encode(7, e) == reference(7, e)
    assert format_ts(e.ts) == "2026-04-01T00:00:00.000000Z"


def test_a_value_of_an_unexpected_type_falls_back_to_the_general_encoder():
    """A bool where an int belongs is not written as ``True``: the general encoder decides (``true``)."""
    e = LogEntry(ts=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), event="x", outcome="success", actor_id=True)
    assert encode(1, e) == reference(1, e)
    assert b'"actor_id":true' in encode(1, e)
