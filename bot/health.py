"""GET /healthz: 200 when the app and its database are usable, 503 otherwise.

For load balancers and `make run` users alike; the answer names no host or credentials."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from storage.db import DatabaseUnavailable, ping

logger = logging.getLogger(__name__)


class Health:
    def __init__(self, *, engine: Engine) -> None:
        self.engine = engine

    async def handle(self, request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(ping, self.engine)
        except DatabaseUnavailable:
            logger.warning("health.database_unavailable")
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
        return JSONResponse({"status": "ok"})
