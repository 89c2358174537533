"""Periodic work of a running server, in one daemon thread: signing log checkpoints and anchoring
them off-host (every second, when due), the scheduled log analysis, payload retention (daily),
disposing of expired working copies (every minute), take-outs past their due date, the disposal of
records past their retention and of expired backups (daily).

Each job runs in its own try: one failing job never stops the others, and every failure goes to the
server log. Several server processes may each run this: every job is safe to run concurrently
(checkpoints of one size are one row; analysis claims its runs in the database).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from hogo.bootstrap import Hogo

log = logging.getLogger("hogo.background")

RETENTION_INTERVAL_S = 24 * 3600
WORKING_COPY_INTERVAL_S = 60.0  # expired working copies are disposed of within a minute (ANON-17)
TAKEOUT_INTERVAL_S = 300


class BackgroundJobs:
    def __init__(self, hogo: Hogo, *, tick_s: float = 1.0) -> None:
        self.hogo = hogo
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_run: dict[str, float] = {}

    def jobs(self) -> list[tuple[str, float, Callable[[Hogo], object]]]:
        from hogo.services import analysis, audit_access, audit_tree, erasure, takeouts, workcopies

        return [
            ("checkpoint", self.tick_s, audit_tree.checkpoint_if_due),
            ("analysis", float(self.hogo.settings.analysis_interval_s), analysis.run_scheduled),
            ("retention", RETENTION_INTERVAL_S, lambda h: audit_access.run_retention(h)),
            ("working_copies", WORKING_COPY_INTERVAL_S, lambda h: workcopies.dispose_expired(h)),  # ANON-17
            ("takeouts", TAKEOUT_INTERVAL_S, takeouts.run_scheduled),  # overdue copies, late reports (SEC-49)
            # Issue 5: records past their retention are erased, with certificates (SEC-50, ANON-10).
            ("disposal", RETENTION_INTERVAL_S, lambda h: erasure.retention_run(h)),
            ("backups", RETENTION_INTERVAL_S, _dispose_expired_backups),  # SEC-51(3), issue 5
        ]

    def run_once(self, *, force: bool = False) -> None:
        now = time.monotonic()
        for name, interval, job in self.jobs():
            last = self._last_run.get(name)
            if not force and last is not None and now - last < interval:
                continue
            self._last_run[name] = now
            try:
                job(self.hogo)
            except Exception as exc:
                log.error("background job %s failed: %s", name, type(exc).__name__)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.run_once()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hogo-background", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:  # a last checkpoint, so a clean shutdown leaves the whole log signed
            from hogo.services import audit_tree

            audit_tree.checkpoint_if_due(self.hogo)
        except Exception as exc:
            log.error("final checkpoint failed: %s", type(exc).__name__)


def _dispose_expired_backups(hogo: Hogo) -> object:
    from hogo.services import backups

    return backups.dispose_expired(hogo, None, scheduled=True)
