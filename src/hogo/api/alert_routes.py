"""/api/v1/alerts and /api/v1/analysis: the alert inbox and the log analysis (ANON-13, SEC-107(2))."""

from __future__ import annotations

from fastapi import APIRouter

from hogo.api.routes import ERRORS

router = APIRouter(prefix="/api/v1", responses=ERRORS)
