"""Health and Prometheus metrics for the collector, on a small HTTP endpoint.

``GET /healthz``: 200 and ``{"status": "ok"}`` when the broker is connected,
the writer is alive and writes succeed; 503 with the reasons otherwise.
``GET /metrics``: Prometheus text format. The counters are the collector's own,
read at scrape time, so nothing is counted twice.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from roomwatch.transport.takeover import TakeoverWatch

log = logging.getLogger(__name__)


@dataclass
class Counters:
    """Running counts, read by the health check and the metrics endpoint."""

    received: int = 0
    invalid: int = 0
    duplicates: int = 0
    stored: int = 0
    alerts: int = 0
    write_failures: int = 0
    delivery_failures: int = 0
    gaps: int = 0
    dead_letters_dropped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    #: Rows read back that could not be used, per table (collector/quarantine.py).
    quarantined: dict[str, int] = field(default_factory=dict)
    alerts_by_type: dict[tuple[str, str], int] = field(default_factory=dict)
    last_write_failed: bool = False


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    reasons: list[str]


class _CountersCollector(Collector):
    def __init__(
        self,
        counters: Counters,
        queue_depth: Callable[[], int],
        connected: Callable[[], bool],
        takeover: TakeoverWatch | None = None,
    ) -> None:
        self._c = counters
        self._queue_depth = queue_depth
        self._connected = connected
        self._takeover = takeover

    def collect(self) -> Iterator[Metric]:
        c = self._c
        yield _labelled("roomwatch_messages", "Valid messages received, by kind.", ["kind"],
                        [((k,), n) for k, n in c.by_kind.items()])  # fmt: skip
        for name, value, help_ in (
            ("roomwatch_messages_invalid", c.invalid,
             "Messages that failed validation (dead-lettered)."),
            ("roomwatch_messages_duplicate", c.duplicates, "Messages dropped as duplicates by id."),
            ("roomwatch_messages_stored", c.stored, "Messages stored (new ids only)."),
            ("roomwatch_write_failures", c.write_failures,
             "Database writes that failed and were retried."),
            ("roomwatch_delivery_failures", c.delivery_failures,
             "Notification attempts that failed."),
            ("roomwatch_sequence_gaps", c.gaps, "Holes in agents' sequences open past the grace."),
            ("roomwatch_dead_letters_dropped", c.dead_letters_dropped,
             "Invalid messages not stored because a dead-letter cap was reached."),
        ):  # fmt: skip
            yield CounterMetricFamily(name, help_, value=value)
        yield _labelled(
            "roomwatch_rows_quarantined",
            "Stored rows the collector could not read (left in place, unused), by table.",
            ["table"],
            [((t,), n) for t, n in dict(c.quarantined).items()],
        )
        yield _labelled("roomwatch_alerts_raised", "Alerts raised, by type and severity.",
                        ["type", "severity"], list(c.alerts_by_type.items()))  # fmt: skip
        yield from self._link_metrics()
        yield GaugeMetricFamily(
            "roomwatch_write_queue", "Items waiting for the database.", value=self._queue_depth()
        )

    def _link_metrics(self) -> Iterator[Metric]:
        if self._takeover is not None:
            yield CounterMetricFamily(
                "roomwatch_mqtt_disconnects",
                "Unexpected disconnects from the broker.",
                value=self._takeover.disconnects,
            )
            yield CounterMetricFamily(
                "roomwatch_mqtt_session_takeovers",
                "Disconnects that mean another client uses the collector's client id.",
                value=self._takeover.takeovers,
            )
        yield GaugeMetricFamily(
            "roomwatch_mqtt_connected",
            "1 when connected to the broker.",
            value=1 if self._connected() else 0,
        )


def _labelled(
    name: str, help_: str, labels: list[str], counts: Iterable[tuple[Sequence[str], int]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_, labels=labels)
    for key, n in sorted(counts, key=lambda item: tuple(item[0])):
        family.add_metric(list(key), n)
    return family


class Observability:
    """The registry, the ingest-lag histogram and the HTTP endpoint."""

    def __init__(
        self,
        counters: Counters,
        queue_depth: Callable[[], int],
        connected: Callable[[], bool],
        health: Callable[[], Health],
        takeover: TakeoverWatch | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_CountersCollector(counters, queue_depth, connected, takeover))
        self.ingest_lag = Histogram(
            "roomwatch_ingest_lag_seconds",
            "From a message's own time to its arrival at the collector.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=self.registry,
        )
        self._health = health
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server else None

    def serve(self, host: str, port: int) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                try:
                    if self.path == "/healthz":
                        health = owner._health()
                        body = json.dumps(
                            {
                                "status": "ok" if health.ok else "unhealthy",
                                "reasons": health.reasons,
                            }
                        ).encode()
                        self._send(200 if health.ok else 503, "application/json", body)
                    elif self.path == "/metrics":
                        self._send(
                            200,
                            "text/plain; version=0.0.4; charset=utf-8",
                            generate_latest(owner.registry),
                        )
                    else:
                        self._send(404, "text/plain", b"not found: try /healthz or /metrics\n")
                except Exception:
                    log.exception("health/metrics request failed")
                    self._send(500, "text/plain", b"internal error\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass  # scrapes every few seconds would drown the log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="collector-http", daemon=True
        )
        self._thread.start()
        log.info("health and metrics on http://%s:%s/healthz and /metrics", host, self.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
