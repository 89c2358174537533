"""REST API under /api/v1 (FastAPI): a thin adapter over ``hogo.services``."""
