"""Injected time, so tests control idle timeouts, lockouts and validity periods."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FakeClock:
    """A clock that moves only when told to (shipped for people who build on hogo)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, **kw: float) -> None:
        self._now += dt.timedelta(**kw)

    def set(self, when: dt.datetime) -> None:
        self._now = when
