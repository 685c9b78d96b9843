"""Keeps ``guardserve_engine_up{engine}`` current: every engine's health check, every few seconds.

(The instrumented engines record the gauge on every health check, ``/ready`` included; this loop makes sure one
happens even when nobody probes.) A check that hangs past the timeout counts as down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from guardserve.app.observability.metrics import GatewayMetrics
from guardserve.models.registry import ServedModel

log = logging.getLogger(__name__)


async def check_engines(models: Mapping[str, ServedModel], metrics: GatewayMetrics, wait: float) -> None:
    async def check(served: ServedModel) -> None:
        try:
            async with asyncio.timeout(wait):
                await served.engine.health()
        except TimeoutError:
            metrics.engine_health(served.name, False)

    await asyncio.gather(*(check(s) for s in models.values()))


async def poll_engine_health(models: Mapping[str, ServedModel], metrics: GatewayMetrics, interval: float) -> None:
    wait = max(interval, 5.0)
    while True:
        try:
            await check_engines(models, metrics, wait)
        except Exception:
            log.exception("engine health poll failed")
        await asyncio.sleep(interval)
