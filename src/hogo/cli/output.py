"""Rendering: with ``--json``, one JSON document on stdout (errors as ``{"error": {…}}``); otherwise
Rich tables and sentences on stdout, errors and warnings on stderr.

Text from the server is never interpreted as Rich markup (a display name like ``[red]x`` prints
as written).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hogo.cli.client import CliError

DASH = "—"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def stdout_is_tty() -> bool:
    return bool(sys.stdout is not None and sys.stdout.isatty())


def stdin_is_tty() -> bool:
    return bool(sys.stdin is not None and sys.stdin.isatty())


def _console(*, stderr: bool = False) -> Console:
    # Made per use: sys.stdout / sys.stderr may have been swapped (tests, redirection).
    return Console(stderr=stderr, highlight=False, emoji=False, markup=False)


class Output:
    """What one command prints, by mode."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = _console()
        return self._console

    def emit(self, data: Any, human: Callable[[Console], None] | None = None) -> None:
        """``data`` as JSON with --json; otherwise whatever ``human`` prints."""
        if self.json_mode:
            print_json(data)
        elif human is not None:
            human(self.console)

    def say(self, text: str | Text, *, style: str | None = None) -> None:
        """A sentence for people (nothing in --json mode)."""
        if not self.json_mode:
            self.console.print(text if isinstance(text, Text) else Text(text, style=style or ""), soft_wrap=True)

    def secret(self, label: str, value: str) -> None:
        """A one-time value on a line of its own, never wrapped or truncated."""
        if not self.json_mode:
            line = Text(f"{label}: ")
            line.append(value, style="bold")
            self.console.print(line, soft_wrap=True)

    def warn(self, text: str) -> None:
        """A warning on stderr, in every mode (stdout stays machine-readable)."""
        line = Text("Warning: ", style="yellow bold")
        line.append(text)
        _console(stderr=True).print(line, soft_wrap=True)


def report_error(err: CliError, *, json_mode: bool) -> None:
    if json_mode:
        print_json({"error": err.to_dict()})
        return
    line = Text("Error", style="bold red")
    line.append(f" ({err.code}): ")
    line.append(err.message)
    if err.requirement:
        line.append(f" [{err.requirement}]")
    console = _console(stderr=True)
    console.print(line, soft_wrap=True)
    if err.hint:
        console.print(Text(f"Hint: {err.hint}", style="dim"), soft_wrap=True)


# ----------------------------------------------------------------------------------- formatting


def fmt_time(value: Any) -> str:
    """An ISO timestamp from the API, shown in this machine's time zone."""
    if not value:
        return DASH
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if t.tzinfo is not None:
        t = t.astimezone()
    return t.strftime("%Y-%m-%d %H:%M %Z").strip()


def fmt_bool(value: Any) -> str:
    return "yes" if value else "no"


def fmt(value: Any) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return fmt_bool(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or DASH
    return str(value)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*(v if isinstance(v, Text) else Text(fmt(v)) for v in row))
    return t


def kv_table(rows: Iterable[tuple[str, Any]], *, title: str | None = None) -> Table:
    t = Table(title=title, show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for key, value in rows:
        t.add_row(Text(key), value if isinstance(value, Text) else Text(fmt(value)))
    return t
