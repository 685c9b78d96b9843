"""Build a redis-py asyncio client from a URL: a single server, Sentinel or Cluster.

* ``redis://[user:password@]host:port/db`` and ``rediss://`` (TLS): one server.
* ``redis+sentinel://[:password@]h1:26379,h2:26379/service/db``: the master of ``service`` found through the
  sentinels (the password is the master's); fail-overs are followed by redis-py.
* ``redis+cluster://[:password@]host:port`` (``rediss+cluster://`` for TLS): a Redis Cluster, any node as seed.
  Every key one admission touches carries the same ``{hash tag}``, so scripts never cross slots.

Nothing connects here: the first command does. Retries are off except one immediate reconnect on a broken
connection (a pooled socket to a Redis that restarted); the caller's timeout and circuit breaker do the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from guardserve.app.store.settings import RedisSettings

RedisClient = Redis | RedisCluster


@dataclass(frozen=True)
class RedisTarget:
    kind: str  # "single", "sentinel" or "cluster"
    where: str  # host:port list, safe to log (no password)


def describe(url: str) -> RedisTarget:
    parts = urlsplit(url)
    kind = "sentinel" if "sentinel" in parts.scheme else "cluster" if "cluster" in parts.scheme else "single"
    hosts = parts.netloc.rpartition("@")[2]
    return RedisTarget(kind, hosts + (parts.path if kind == "sentinel" else ""))


def _common(settings: RedisSettings) -> dict[str, Any]:
    return {
        # backstops: the call's deadline (app.store.backend, lag-tolerant, connecting included) decides; redis-py's
        # own timeouts would fire falsely after a blocked loop, as asyncio.timeout does
        "socket_timeout": settings.timeout_ms / 1000 + 1.0,
        "socket_connect_timeout": settings.connect_timeout_ms / 1000 + 1.0,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "decode_responses": False,
    }


def connect(settings: RedisSettings) -> RedisClient:
    if settings.url is None:
        raise ValueError("no Redis URL configured (GUARDSERVE_REDIS__URL)")
    url = settings.url.get_secret_value()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    common = _common(settings)
    if scheme in ("redis", "rediss", "unix"):
        return Redis.from_url(url, max_connections=settings.max_connections + 8, **common)
    password = unquote(parts.password) if parts.password else None
    username = unquote(parts.username) if parts.username else None
    hosts = [_host_port(h, default_port=26379 if "sentinel" in scheme else 6379) for h in _hosts(parts.netloc)]
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("a redis+sentinel URL needs the service name: redis+sentinel://host:port/service[/db]")
        db = int(path[1]) if len(path) > 1 else 0
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            hosts, socket_timeout=common["socket_timeout"], socket_connect_timeout=common["socket_connect_timeout"]
        )
        master: Redis = sentinel.master_for(
            path[0],
            db=db,
            password=password,
            username=username,
            ssl=scheme.startswith("rediss"),
            max_connections=settings.max_connections + 8,
            **common,
        )
        return master
    if scheme in ("redis+cluster", "rediss+cluster"):
        host, port = hosts[0]
        return RedisCluster(
            host=host,
            port=port,
            password=password,
            username=username,
            ssl=scheme.startswith("rediss"),
            max_connections=settings.max_connections + 8,
            **common,
        )
    raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (redis, rediss, redis+sentinel, redis+cluster)")


def _hosts(netloc: str) -> list[str]:
    return [h for h in netloc.rpartition("@")[2].split(",") if h]


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        return text, default_port
    return host.strip("[]"), int(port)
