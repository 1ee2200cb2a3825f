"""Deliver alert notifications to staff channels (Apprise URLs), one worker per channel.

Each step of an alert's life (DESIGN.md principle 6) that must reach a person is
handed to :meth:`Dispatcher.submit`, which only queues it and returns. Every
attempt, good or bad, is handed to ``record`` for the audit trail.

The parts, one job each:

* :mod:`.messages`: :class:`Notification` (what to send) and :class:`Attempt`
  (one try, a line of the audit trail).
* :mod:`.redaction`: :func:`redact_url`, a URL fit to store and show. Only that
  form of a URL is ever stored (``Attempt.channel``) or logged. What is secret
  comes from Apprise's own privacy URL, plus rules for what Apprise prints in
  clear (HTTP headers, webhook path tokens) and for URLs it cannot parse.
* :mod:`.scrubbing`: error texts and, while the dispatcher runs, the records of
  Apprise and urllib3 scrubbed of every secret found in the URLs. Apprise's own
  lines below WARNING are dropped unless the ``apprise`` logger was given a
  level explicitly; its warnings (a failed send) come through, scrubbed.
* :mod:`.channels`: the Apprise adapter (synchronous, bounded by the URL's
  socket timeouts) and the sender over an injected ``notify``.
* :mod:`.dispatcher`: the per-channel queues (critical first), workers and
  retries with backoff.
"""

from roomwatch.collector.delivery.dispatcher import Dispatcher
from roomwatch.collector.delivery.messages import (
    SEVERITY_PRIORITY,
    Attempt,
    Notification,
    Notify,
)
from roomwatch.collector.delivery.redaction import redact_url

__all__ = ["SEVERITY_PRIORITY", "Attempt", "Dispatcher", "Notification", "Notify", "redact_url"]
