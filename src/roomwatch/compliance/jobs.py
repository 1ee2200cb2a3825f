"""The compliance side of a running collector: the deadline check on its alert desk, and
the scheduled jobs (report delivery, telemetry downsampling) on a scheduler of their own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.compliance import deadlines, retention, verdicts
from roomwatch.compliance.schedule import ReportDeliveries

log = logging.getLogger(__name__)

#: How often the report schedule is looked at (sending is once per period whatever this is).
REPORTS_EVERY_H = 6
#: How often the verdicts of recently ended episodes are judged and kept.
VERDICTS_EVERY_S = 900


def attach_checks(collector: Collector, config: CollectorConfig) -> None:
    """Every periodic alert check a collector runs (parent notification, record completeness,
    frequent and repeated use). ``roomwatch collector`` schedules them on the wall clock; the
    simulator and the demo run the same ones on their virtual clock (simulation/engine.py)."""
    deadlines.attach(collector, config)


class ComplianceJobs:
    def __init__(self, collector: Collector, config: CollectorConfig) -> None:
        self.collector = collector
        self.config = config
        self.scheduler = BackgroundScheduler(timezone="UTC")
        attach_checks(collector, config)  # before the collector starts: it schedules them
        engine = collector.store.engine
        self.reports = ReportDeliveries(engine, config, collector.clock.now)
        days = config.retention.telemetry_raw_days
        self.downsample: Callable[[], object] | None = (
            (lambda: retention.downsample(engine, days, collector.clock.now, config))
            if days is not None
            else None
        )

    def keep_verdicts(self) -> None:
        now = self.collector.clock.now()
        since = now - timedelta(days=self.config.compliance.lookback_days)
        verdicts.refresh(self.collector.store.engine, self.config, now, since)

    def start(self) -> None:
        self._every(self.keep_verdicts, VERDICTS_EVERY_S, "verdicts")
        if self.config.reports.recipients:
            self._every(self.reports.run, REPORTS_EVERY_H * 3600, "reports")
        if self.downsample is not None:
            self._every(self.downsample, self.config.retention.every_h * 3600, "retention")
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def _every(self, job: Callable[[], object], seconds: float, name: str) -> None:
        def safely() -> None:
            try:
                job()
            except Exception:
                log.exception("compliance job %s failed; it runs again on schedule", name)

        # First run a minute after start (the collector is busy catching up before that).
        first = datetime.now(UTC) + timedelta(seconds=60)
        self.scheduler.add_job(
            safely,
            "interval",
            seconds=seconds,
            id=name,
            next_run_time=first,
            coalesce=True,
            max_instances=1,
        )
