"""/api/v1 route for a guarded CSV export (SEC-46(1), SEC-47, SEC-48(1), ANON-7).

``POST /files/{code}/records/export`` streams a plain CSV of the records selected, for files whose marks allow an
unencrypted copy. The marks go with it (明示): the ``X-Hogo-Marks`` header (JSON, ASCII-escaped) and the
``X-Hogo-Marks-Label`` header. Refusals come back before any byte of data (403 ``export_restricted`` with the reasons
in Japanese and English). Packages are not built here: a package leaves hogo only through an approved take-out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from hogo.api.data_routes import PurposeHeader, PurposeQuery, _purpose
from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, ActorCtx
from hogo.domain.handling import Use
from hogo.services import guard, packages

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000)

    fields: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=500)
    where: dict[str, str] | None = Field(default=None, max_length=10)
    record_ids: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=100_000)
    segment: str | None = Field(default=None, max_length=200)
    reveal: list[str] = Field(default_factory=list, max_length=50)
    encoding: Literal["utf-8", "utf-8-bom", "shift_jis"] = "utf-8"
    publish: bool = False


@router.post("/files/{code}/records/export", tags=["records"],
             responses={200: {"content": {"text/csv": {}}, "description": "the CSV, streamed"}})
async def export_records(code: str, body: ExportIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                         x_purpose: PurposeHeader = None, purpose: PurposeQuery = None) -> StreamingResponse:
    """A CSV of the selected records (the export grant decides; the file's marks must allow an unencrypted copy;
    ``publish`` only for confidentiality 1). One access entry lists every record before any value is sent."""
    selection = guard.ExportSelection(record_ids=tuple(body.record_ids) if body.record_ids is not None else None,
                                      where=body.where, segment=body.segment)
    stream = await run_in_threadpool(
        guard.export_records, hogo, principal, code, fields=body.fields, selection=selection,
        purpose=_purpose(x_purpose, purpose), use=Use.PUBLISH if body.publish else Use.EXPORT, encrypted=False,
        reveal=body.reveal, ctx=ctx)
    marks = packages.marks_document(stream, exported_by=principal.username, exported_at=hogo.clock.now(),
                                    encoding=body.encoding, published=body.publish)
    pieces = packages.csv_pieces(stream, encoding=body.encoding)
    first = await run_in_threadpool(next, pieces)  # a bad encoding is refused before the response starts
    charset = "Shift_JIS" if body.encoding == "shift_jis" else "utf-8"

    def rest() -> Iterator[bytes]:
        yield first
        yield from pieces

    return StreamingResponse(
        rest(), media_type=f"text/csv; charset={charset}",
        headers={"X-Hogo-Marks": json.dumps(marks, ensure_ascii=True, separators=(",", ":")),
                 "X-Hogo-Marks-Label": stream.marks.classification.label,
                 "X-Hogo-Record-Count": str(stream.count), "Cache-Control": "no-store",
                 "Content-Disposition": f'attachment; filename="{stream.file}.csv"'})
