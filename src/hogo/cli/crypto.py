"""``hogo crypto``: the algorithms hogo uses and their CRYPTREC status (SEC-133, SEC-134(2)).

Registered in ``hogo.cli.main`` (``app.add_typer``); the registry itself is ``hogo.crypto.registry``.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from hogo.cli.command import JsonOpt, api, command, command_group
from hogo.cli.output import Output, fmt, table

crypto_app = command_group("crypto", "Cryptographic algorithms in use and their CRYPTREC status (SEC-133, SEC-134).")


@command(crypto_app, "algorithms")
def crypto_algorithms(json_out: JsonOpt = False) -> None:
    """Every algorithm hogo uses: purpose, key and output lengths, CRYPTREC list (電子政府推奨暗号リスト,
    推奨候補, 運用監視, or not listed) and hogo's own status; and when the table was last reviewed against
    the CRYPTREC list and advisories (SEC-134(2): due again a year later)."""
    out = Output(json_out)
    with api() as client:
        data = client.get("/crypto/algorithms")

    def human(c: Console) -> None:
        c.print(table(
            ["Algorithm", "Kind", "Key bits", "Output bits", "CRYPTREC", "Status", "Purpose", "Note"],
            [[a["name"], a["kind"], fmt(a.get("key_bits")), fmt(a.get("output_bits")), a["cryptrec"],
              a["hogo_status"], a["purpose"], a.get("note") or ""] for a in data["algorithms"]],
        ))
        line = f"Checked against {data['cryptrec_list']}; last reviewed {data['reviewed_on']}, next by " \
               f"{data['next_review']}."
        c.print(Text(line + (" REVIEW DUE." if data.get("review_due") else ""),
                     style="bold red" if data.get("review_due") else ""))

    out.emit(data, human)
