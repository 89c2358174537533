"""The baseline for the throughput benchmark: a bare FastAPI app that answers
``GET /api/v1/auth/whoami`` with a fixed JSON body (the body the real hogo server returned), with no
authentication, no database and no middleware. Like hogo's endpoint it is a plain ``def`` (so it runs
in the same thread pool) and is served by the same uvicorn with the same options.

    HOGO_BENCH_WHOAMI_JSON=/path/to/body.json uvicorn --app-dir bench bare_app:app
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

PAYLOAD: dict[str, Any] = json.loads(Path(os.environ["HOGO_BENCH_WHOAMI_JSON"]).read_text(encoding="utf-8"))

app = FastAPI(title="bare baseline")


@app.get("/api/v1/auth/whoami")
def whoami() -> dict[str, Any]:
    return PAYLOAD


@app.get("/api/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
