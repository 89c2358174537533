"""Retention (保存期間) of records: when a record is due for disposal (issue 5; ANON-10, SEC-50).

A file keeps its records ``retention_days`` (spec ``retention_days`` / ``retention_years``). The period
runs from the record's creation, or, when the spec names ``retention_from`` (a date field such as a
retirement date), from that date — a record whose date is still empty has no due date. The due date is
stored in clear beside the record (``records.dispose_after``) at every write, so a retention run finds
what is due without decrypting anything; a date alone, next to a random record ID, identifies nobody.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from hogo.domain.files import FileSpec


def dispose_after(spec: FileSpec, values: Mapping[str, str], created: dt.datetime) -> dt.date | None:
    """The last day the record is kept; it is due for disposal the day after."""
    if spec.retention_from is None:
        start = created.date()
    else:
        raw = values.get(spec.retention_from)
        if not raw:
            return None
        try:
            start = dt.date.fromisoformat(raw)
        except ValueError:
            return None
    return start + dt.timedelta(days=spec.retention_days)


def rule_of(spec: FileSpec) -> dict[str, object]:
    """The retention rule as a certificate states it (no values)."""
    return {"retention_days": spec.retention_days,
            "runs_from": spec.retention_from or "record_created"}
