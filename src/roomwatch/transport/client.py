"""A paho-mqtt 2 client set up the way every Roomwatch program needs it.

* Callback API version 2; every callback is thin and catches everything, so
  no exception ever reaches paho's network thread.
* Subscriptions are made in ``on_connect``, so a reconnect restores them.
* Persistent sessions (MQTT 3.1.1 ``clean_session=False``; MQTT 5 a session
  expiry), QoS 1, reconnect with backoff, TCP_NODELAY (paho leaves Nagle on).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from roomwatch.firmware_config.mqtt import MqttSettings
from roomwatch.transport.takeover import TakeoverWatch

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]

#: How long a broker keeps an MQTT 5 session while we are away (a week).
SESSION_EXPIRY_S = 7 * 24 * 3600


_PUBACK = 0x40


class _InThreadQuiet:
    """paho's wake-up socket, silent when the network thread itself queues a packet.

    paho writes a byte to it for every packet queued (every PUBACK of every message
    received), so that a select() in its network thread wakes up; the network thread is
    awake already, and its next select() sees the packet waiting (``want_write``)."""

    def __init__(self, sock: socket.socket, client: mqtt.Client) -> None:
        self._sock = sock
        self._client = client

    def send(self, data: bytes) -> int:
        if threading.current_thread() is getattr(self._client, "_thread", None):
            return len(data)
        return self._sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Client(mqtt.Client):
    """paho's client, reading and acknowledging in bulk (profiled in docs/benchmarks.md).

    paho reads each packet with three ``recv`` calls (type, length, body) and handles one
    packet per ``select``; it sends each PUBACK with its own ``send``. At thousands of
    messages a second those system calls cost the collector as much as its own work. Here
    reads come from a buffer filled 64 kB at a time, every packet already received is handled
    before the next ``select``, and PUBACKs waiting together go out in one ``send``. The
    protocol and paho's own state handling are unchanged.
    """

    _READ_SIZE = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        self._may_refill = True

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._rbuf:
            if not self._may_refill:
                raise BlockingIOError  # paho keeps the partial packet until the next read
            self._may_refill = False  # one recv per read event: the work per select is bounded
            # paho's own recv: its TLS and closed-socket handling; raises when nothing waits.
            self._rbuf += super()._sock_recv(self._READ_SIZE)
            if not self._rbuf:
                return b""  # the broker closed the connection
        data = bytes(self._rbuf[:bufsize])
        del self._rbuf[:bufsize]
        return data

    def _sock_close(self) -> None:
        self._rbuf.clear()  # bytes of a dead connection never feed the next one
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        self._may_refill = True
        rc = super().loop_read(max_packets)
        # Whatever is buffered has been received: handle it now, select() cannot see it.
        # (At most one buffer's worth: the next bytes wait for the next select.)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rbuf and self._sock is not None:
            rc = super().loop_read(max_packets)
        return rc

    def loop_start(self) -> MQTTErrorCode:
        rc = super().loop_start()
        waker = self._sockpairW
        if isinstance(waker, socket.socket):
            self._sockpairW = _InThreadQuiet(waker, self)  # type: ignore[assignment]
        return rc

    def _packet_write(self) -> MQTTErrorCode:
        out = self._out_packet
        # Only this (network) thread takes from the left; others append on the right.
        if len(out) > 1 and out[0]["command"] & 0xF0 == _PUBACK and out[0]["pos"] == 0:
            parts: list[bytes] = []
            while (
                out
                and out[0]["command"] & 0xF0 == _PUBACK
                and out[0]["pos"] == 0
                and len(parts) < 4096
            ):
                parts.append(bytes(out.popleft()["packet"]))
            merged = b"".join(parts)
            out.appendleft(
                {
                    "command": _PUBACK,
                    "mid": 0,
                    "qos": 0,
                    "pos": 0,
                    "to_process": len(merged),
                    "packet": merged,
                    "info": None,
                }
            )
        return super()._packet_write()


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its handshake fails: paho leaves that socket to the garbage
    collector (a ResourceWarning per refused attempt, every few seconds)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class MqttLink:
    """One connection to the broker, with its subscriptions, will and handlers."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        subscriptions: Sequence[str] = (),
        on_message: MessageHandler | None = None,
        on_connected: Callable[[bool], None] | None = None,
        will: Callable[[], tuple[str, bytes]] | None = None,
        persistent: bool = True,
        replays_itself: bool = False,
        bulk_io: bool = False,
    ) -> None:
        """``bulk_io``: read and acknowledge in bulk (:class:`_Client`, for the collector's
        thousands of messages a second). It leans on paho's private internals, so only the
        collector, whose tests load it hard, uses it; agents keep paho as it is.

        ``replays_itself``: the caller resends everything unacknowledged, in order, after
        a reconnect that finds no session (the agent's outbox); paho's own retransmissions
        would then arrive *before* older replayed messages, so they are dropped.

        ``will`` makes the retained last will afresh before every connection, so each
        carries its own message id and time."""
        self.settings = settings
        self.client_id = settings.client_id or client_id
        self.connected = threading.Event()
        #: Set once the broker has confirmed every subscription of the current connection.
        self.subscribed = threading.Event()
        self._pending_subscriptions: set[int] = set()
        self._subscriptions = list(subscriptions)
        self._on_message_handler = on_message
        self._on_connected = on_connected
        v5 = settings.protocol == "5"
        self._v5 = v5
        self._persistent = persistent
        self._replays_itself = replays_itself
        self.client = (_Client if bulk_io else mqtt.Client)(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else not persistent,
            reconnect_on_failure=True,
        )
        self._stopping = False
        self._started = False
        self._unreachable_said = -1e9
        self._configured = False
        self._retry: threading.Timer | None = None
        self._will = will
        #: Unexpected disconnects, and whether they add up to someone using our client id.
        self.takeover = TakeoverWatch()
        self._tls_problem: str | None = None
        self._tls_said: tuple[str, float] | None = None
        self._wire_client()

    def _wire_client(self) -> None:
        """paho's logger, pacing and callbacks."""
        paho_log = logging.getLogger(f"{__name__}.paho.{self.client_id}")
        paho_log.addFilter(self._quiet_after_stop)
        self.client.enable_logger(paho_log)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(100)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_socket_open = self._on_socket_open
        # paho's network thread swallows why a connection attempt failed; this wrapper sees
        # it first, so a TLS failure is named as one (not "broker unreachable").
        self._paho_reconnect = self.client.reconnect
        self.client.reconnect = self._reconnect  # type: ignore[method-assign]

    # ------------------------------------------------------------------ control

    def _configure(self) -> None:
        """Credentials and TLS: files are read here, so a missing one is retried, not fatal."""
        settings = self.settings
        if settings.username is not None:
            password = None
            if settings.password_file is not None:
                password = settings.password_file.read_text(encoding="utf-8").strip()
            self.client.username_pw_set(settings.username, password)
        if settings.tls is not None:
            tls = settings.tls
            self.client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            if tls.insecure_skip_verify:
                self.client.tls_insecure_set(True)
            context = getattr(self.client, "_ssl_context", None)
            if isinstance(context, ssl.SSLContext):
                context.sslsocket_class = _ClosingSSLSocket
        self._configured = True

    def _refresh_will(self) -> None:
        if self._will is not None:
            topic, payload = self._will()
            self.client.will_set(topic, payload, qos=1, retain=True)

    def start(self) -> None:
        """Connect in the background; reconnects by itself until :meth:`stop`.

        Never raises: a broker setting that cannot be used yet (a password or
        certificate file missing, unreadable or invalid) is logged and retried
        every 30 s, while the caller (the agent's interlock) runs on.
        """
        if self._stopping:
            return
        self._started = True
        try:
            if not self._configured:
                self._configure()
            self._refresh_will()
            self._connect()
        except Exception as exc:  # noqa: BLE001 - whatever it is, log it and retry
            log.error(
                "cannot connect to the broker %s:%s yet (%s); retrying in 30 s",
                self.settings.host,
                self.settings.port,
                exc,
            )
            self._retry = threading.Timer(30, self.start)
            self._retry.daemon = True
            self._retry.start()

    def _connect(self) -> None:
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S if self._persistent else 0
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=not self._persistent if self._v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self.client.loop_start()

    def _reconnect(self) -> MQTTErrorCode:
        try:
            rc = self._paho_reconnect()
        except ssl.SSLError as exc:
            self._tls_failed(exc)
            raise
        self._tls_problem = None
        return rc

    def _tls_failed(self, exc: ssl.SSLError) -> None:
        """Say what is wrong with TLS, in words an operator can act on (once a minute)."""
        host = self.settings.host
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = exc.verify_message or str(exc)
            if "mismatch" in why or "not valid for" in why:
                fix = (
                    f"the broker's certificate is not for {host!r}: set mqtt.host to a name or "
                    "address the certificate lists (its subjectAltName)"
                )
            else:
                fix = (
                    "the broker's certificate is not signed by the CA in mqtt.tls.ca_file "
                    f"({self.settings.tls.ca_file if self.settings.tls else None}), or it has "
                    "expired: give the CA that signed it"
                )
            problem = f"TLS certificate verify failed ({why}): {fix}"
        else:
            problem = (
                f"TLS handshake failed ({exc.reason or exc}): check that port "
                f"{self.settings.port} is the broker's TLS listener and the TLS settings"
            )
        self._tls_problem = problem
        now = time.monotonic()
        said = self._tls_said
        if said is None or said[0] != problem or now - said[1] >= 60:
            self._tls_said = (problem, now)
            log.error(
                "cannot connect to the broker %s:%s: %s; retrying",
                host,
                self.settings.port,
                problem,
            )

    def _quiet_after_stop(self, record: logging.LogRecord) -> bool:
        # paho 2.2's loop thread logs "Client is not connected" at ERROR on every retry
        # while the broker is unreachable, and after a deliberate disconnect. An error
        # line every second would teach operators to ignore errors: say it once a
        # minute, as a warning naming the broker, and not at all when stopping.
        if not str(record.msg).startswith("Client is not connected"):
            return True
        if self._stopping or self._tls_problem is not None:
            return False  # stopping, or reachable but refused over TLS (said as such)
        now = time.monotonic()
        if now - self._unreachable_said < 60:
            return False
        self._unreachable_said = now
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg, record.args = (
            "broker %s:%s unreachable; retrying",
            (
                self.settings.host,
                self.settings.port,
            ),
        )
        return True

    def stop(self, publish_first: tuple[str, bytes] | None = None) -> None:
        """Disconnect cleanly (no last will), optionally publishing a final retained message."""
        self._stopping = True
        if self._retry is not None:
            self._retry.cancel()
        try:
            if publish_first is not None and self.connected.is_set():
                info = self.client.publish(publish_first[0], publish_first[1], qos=1, retain=True)
                info.wait_for_publish(timeout=2)
            self.client.disconnect()
        except Exception:
            log.exception("error while disconnecting %s", self.client_id)
        finally:
            self.client.loop_stop()

    def network_alive(self) -> bool:
        """paho's network thread is running, or a retry of a failed start is pending (before
        :meth:`start`, and after :meth:`stop`: nothing to watch, so True)."""
        thread = getattr(self.client, "_thread", None)
        if thread is not None and thread.is_alive():
            return True
        if self._retry is not None and self._retry.is_alive():
            return True
        return self._stopping or not self._started

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        """Queue a message; paho keeps QoS 1 messages across a reconnect."""
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    # ---------------------------------------------------------------- callbacks

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        try:
            if isinstance(sock, socket.socket) or hasattr(sock, "setsockopt"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception:
            log.debug("could not set TCP_NODELAY", exc_info=True)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if reason_code.is_failure:
                log.error(
                    "broker %s:%s refused %s: %s",
                    self.settings.host,
                    self.settings.port,
                    self.client_id,
                    reason_code,
                )
                return
            log.info(
                "connected to %s:%s as %s (session present: %s)",
                self.settings.host,
                self.settings.port,
                self.client_id,
                flags.session_present,
            )
            self.subscribed.clear()
            if self._replays_itself and not flags.session_present:
                self._drop_retransmissions()
            if self._subscriptions:
                _, mid = client.subscribe([(topic, 1) for topic in self._subscriptions])
                self._pending_subscriptions = {mid} if mid is not None else set()
            else:
                self.subscribed.set()
            try:
                if self._on_connected is not None:
                    # Before anything waiting on `connected` may send: the agent's "online"
                    # goes out ahead of its replayed backlog, every time.
                    self._on_connected(bool(flags.session_present))
            finally:
                self.connected.set()
        except Exception:
            log.exception("on_connect handler failed")

    def _drop_retransmissions(self) -> None:
        # paho keeps no public way to forget queued messages; its own lock guards the dict.
        mutex = getattr(self.client, "_out_message_mutex", None)
        messages = getattr(self.client, "_out_messages", None)
        if mutex is None or messages is None:
            log.warning("cannot drop paho's retransmissions (paho changed); order may vary")
            return
        with mutex:
            dropped = len(messages)
            messages.clear()
            self.client._inflight_messages = 0
        if dropped:
            log.info("broker had no session: %d retransmission(s) left to the replay", dropped)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        try:
            refused = [str(rc) for rc in reason_codes if rc.is_failure]
            if refused:
                log.error(
                    "broker refused subscriptions of %s: %s", self.client_id, ", ".join(refused)
                )
            self._pending_subscriptions.discard(mid)
            if not self._pending_subscriptions:
                log.info("subscribed to %d topic filter(s)", len(self._subscriptions))
                self.subscribed.set()
        except Exception:
            log.exception("on_subscribe handler failed")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        try:
            if not self._stopping:
                self._refresh_will()  # the next connection announces its own offline
            if self._stopping or not was_connected:
                return  # a refused or failed connection attempt is not a disconnect
            if self.takeover.disconnected(getattr(reason_code, "value", None)):
                log.error(
                    "the MQTT session of %s was taken over: %d unexpected disconnect(s) in "
                    "the last minute (%s). Another client connects with the same client id: "
                    "a second program configured with the same name, or someone borrowing "
                    "it; bind client ids to users in the broker (use_username_as_clientid, "
                    "docs/operations.md)",
                    self.client_id,
                    self.takeover.recent_disconnects(),
                    reason_code,
                )
            elif reason_code.is_failure:
                log.warning("disconnected from broker (%s); reconnecting", reason_code)
        except Exception:
            log.exception("on_disconnect handler failed")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        handler = self._on_message_handler
        if handler is None:
            return
        try:
            # A topic that is not UTF-8 makes paho's .topic raise: decode it ourselves.
            topic = bytes(message._topic).decode("utf-8", errors="replace")
            handler(topic, bytes(message.payload))
        except Exception:
            log.exception("message handler failed on a message from the broker")
