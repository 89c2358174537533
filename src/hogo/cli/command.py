"""What every ``hogo`` command shares: errors reported in the command's mode, and command groups."""

from __future__ import annotations

import contextvars
from typing import Any

import typer
from typer.core import TyperCommand

from hogo.cli.client import CliError, from_hogo_error
from hogo.cli.output import report_error
from hogo.errors import HogoError

URL_KEY = "hogo.url"  # where the root callback keeps the global --url in the click context's meta

# The click context of the command running now (for the global --url of the root callback).
CURRENT_CONTEXT: contextvars.ContextVar[Any] = contextvars.ContextVar("hogo_cli_context", default=None)


class HogoCommand(TyperCommand):
    """Reports a CliError (or a local HogoError) in the command's mode (``--json`` or not) and exits
    with its code."""

    def invoke(self, ctx: Any) -> Any:
        reset = CURRENT_CONTEXT.set(ctx)
        try:
            return super().invoke(ctx)
        except CliError as exc:
            err = exc
        except HogoError as exc:
            err = from_hogo_error(exc)
        finally:
            CURRENT_CONTEXT.reset(reset)
        report_error(err, json_mode=bool(ctx.params.get("json_out")))
        raise typer.Exit(err.exit_code)


def command_group(name: str, help_text: str) -> typer.Typer:
    return typer.Typer(name=name, help=help_text, no_args_is_help=True, rich_markup_mode="rich",
                       pretty_exceptions_show_locals=False)
