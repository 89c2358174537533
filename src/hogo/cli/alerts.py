"""``hogo alerts``: the alert inbox of the log analysis (ANON-13, SEC-107(2)). Filled in by issue 4's
analysis work; registered in ``hogo.cli.main``."""

from __future__ import annotations

from hogo.cli.command import command_group

alerts_app = command_group("alerts", "Alerts raised by the log analysis: list and acknowledge (ANON-13).")
