"""``/metrics`` on its own port (``GUARDSERVE_OBSERVABILITY__METRICS_PORT``), so scrapes never share the API port.

prometheus_client's small threaded HTTP server (a daemon thread, off the event loop). With one process the app
runs it from its lifespan; with several workers ``guardserve serve`` runs it in the supervisor process, reading
every worker's files.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


@dataclass
class MetricsServer:
    httpd: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        """Blocking (waits for the serving loop to notice): call it from a thread in async code."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(httpd, thread)
