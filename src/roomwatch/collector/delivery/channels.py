"""Sending one notification on one channel: the Apprise adapter and its stand-ins.

A sender returns an outcome, ``(ok, error, worth retrying)``, and never decides
about retries itself. Apprise is used synchronously inside the channel's worker
(no service timeout, no shared thread pool): a hanging endpoint is bounded by
the URL's socket timeouts (Apprise's defaults: ``cto=4``, ``rto=4`` seconds;
email ``cto=15``).
"""

from __future__ import annotations

from collections.abc import Callable

import apprise

from roomwatch.collector.delivery import plugins
from roomwatch.collector.delivery.messages import Notification, Notify

Outcome = tuple[bool, str | None, bool]
"""``(ok, error, worth retrying)``"""

Send = Callable[[str, Notification], Outcome]
"""``send(url, notification) -> outcome``"""

INVALID_URL = "not a valid or supported Apprise URL"

_NOTIFY_TYPE = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "info": apprise.NotifyType.INFO,
}
_PROBLEM_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL", "DEPRECATION WARNING"})


class AppriseSender:
    """One channel's Apprise object, created once, used only by that channel's worker."""

    def __init__(self, url: str) -> None:
        # Synchronous, and no service timeout: with a timeout, Apprise runs the call in a
        # process-wide thread pool and abandons it there; our worker thread is the isolation.
        asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
        self._apprise = apprise.Apprise(asset=asset)
        plugin = plugins.load(url, asset)
        self.valid = plugin is not None and bool(self._apprise.add(plugin))

    def __call__(self, url: str, n: Notification) -> Outcome:
        if not self.valid:
            return False, INVALID_URL, False
        if n.state == "resolved":
            notify_type = apprise.NotifyType.SUCCESS
        else:
            notify_type = _NOTIFY_TYPE.get(n.severity, apprise.NotifyType.FAILURE)
        with self._apprise.notify(
            body=n.body,
            title=n.title,
            notify_type=notify_type,
            body_format=apprise.NotifyFormat.TEXT,
        ) as result:
            if result:
                return True, None, True
            problems = [entry.message for entry in result.logs() if entry.level in _PROBLEM_LEVELS]
            return False, "; ".join(problems) or f"Apprise reported {result.status.name}", True


def custom_sender(notify: Notify) -> Send:
    """A sender over an injected ``notify(url, title, body) -> ok``."""

    def send(url: str, n: Notification) -> Outcome:
        if notify(url, n.title, n.body):
            return True, None, True
        return False, "the channel reported a failure", True

    return send


def unusable(url: str, n: Notification) -> Outcome:
    """The sender of a channel not set up yet."""
    return False, "channel not set up", False
