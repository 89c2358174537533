"""Web pages for auditors: log search, entry proofs, timeline and charts (SEC-107, MN-3b);
installed by ``hogo.web.routes.install``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
