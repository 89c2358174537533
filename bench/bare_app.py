"""The baseline for the throughput benchmarks: a bare FastAPI app that answers with a fixed JSON body
(the body the real hogo server returned), with no authentication, no database, no decryption and no
middleware. Like hogo's endpoints they are plain ``def`` (so they run in the same thread pool) and
are served by the same uvicorn with the same options.

    HOGO_BENCH_WHOAMI_JSON=/path/to/body.json uvicorn --app-dir bench bare_app:app
    HOGO_BENCH_RECORD_JSON=/path/to/record.json uvicorn --app-dir bench bare_app:app

``GET /api/v1/auth/whoami`` answers with the whoami body; ``GET /api/v1/files/{code}/records/{id}``
with the record body (whatever the code and ID: the path parameters are parsed, nothing more).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI


def _payload(var: str) -> Any:
    path = os.environ.get(var)
    return json.loads(Path(path).read_text(encoding="utf-8")) if path else None


WHOAMI: dict[str, Any] | None = _payload("HOGO_BENCH_WHOAMI_JSON")
RECORD: dict[str, Any] | None = _payload("HOGO_BENCH_RECORD_JSON")
PAYLOAD = WHOAMI  # the name the whoami benchmark has always used

app = FastAPI(title="bare baseline")

if WHOAMI is not None:

    @app.get("/api/v1/auth/whoami")
    def whoami() -> dict[str, Any]:
        assert WHOAMI is not None
        return WHOAMI


if RECORD is not None:

    @app.get("/api/v1/files/{code}/records/{record_id}")
    def read_record(code: str, record_id: str) -> dict[str, Any]:
        assert RECORD is not None
        return RECORD


@app.get("/api/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
