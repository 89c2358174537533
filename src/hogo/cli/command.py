"""What every ``hogo`` command shares: errors reported in the command's mode, command groups, the
option helpers and the API client of the chosen server."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from hogo.cli.client import ApiClient, CliError, from_hogo_error, signed_in_client
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


F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def command(group: typer.Typer, name: str, **kw: Any) -> Callable[[F], F]:
    return group.command(name, cls=HogoCommand, **kw)


def opt(*names: str, metavar: str | None = None, help: str | None = None, show_default: bool = False) -> Any:
    """A typer Option; defaults are not shown unless they mean something."""
    return typer.Option(*names, metavar=metavar, help=help, show_default=show_default)


def root_url() -> str | None:
    """The global ``--url`` (``hogo --url URL COMMAND``), if given."""
    ctx = CURRENT_CONTEXT.get()
    value = ctx.meta.get(URL_KEY) if ctx is not None else None
    return str(value) if value else None


@contextlib.contextmanager
def api() -> Iterator[ApiClient]:
    """A client for the chosen server (global ``--url``, ``$HOGO_URL`` or the stored sign-in) with
    ``$HOGO_TOKEN`` or the stored session."""
    client = signed_in_client(root_url())
    try:
        yield client
    finally:
        client.close()
