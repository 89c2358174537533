"""Reading dates the way people in the organisation mean them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def to_instant(value: dt.date | dt.datetime | None, tz_name: str, *, end_of_day: bool = False
               ) -> dt.datetime | None:
    """A date means the start of that day (or with ``end_of_day``, the first instant after it) in
    the organisation's time zone: "valid until 2027-03-31" includes all of the 31st (SEC-129).
    A datetime without a zone is read in the organisation's zone."""
    if value is None:
        return None
    tz = ZoneInfo(tz_name)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value
    day = value + dt.timedelta(days=1) if end_of_day else value
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz)
