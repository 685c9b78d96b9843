"""``GET /metrics``: Prometheus exposition (text format, or OpenMetrics when the scraper asks for it).

Mounted on the API port unless ``GUARDSERVE_OBSERVABILITY__METRICS_PORT`` moves it to a port of its own. Not
counted in the request metrics. Rendering reads files in multiprocess mode, so it runs in a thread.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from guardserve.app.observability.core import Observability

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    observability: Observability = request.app.state.observability
    assert observability.metrics is not None  # the route is mounted only with metrics on
    body, content_type = await asyncio.to_thread(observability.metrics.exposition, request.headers.get("accept", ""))
    return Response(content=body, headers={"Content-Type": content_type})
