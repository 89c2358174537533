"""Web pages for the alert inbox (ANON-13, SEC-107(2)); installed by ``hogo.web.routes.install``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
