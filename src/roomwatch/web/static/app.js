// Roomwatch pages: live updates (server-sent events), episode timers, local times,
// the alert sound and banner, and Web Push subscription. No build step, no framework.
"use strict";

(function () {
  const body = document.body;

  // ---- times: the server sends UTC ISO; show them in the reader's own zone
  function localise(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.textContent = d.toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
    });
  }

  // ---- episode timers against their limit
  function pad(n) { return String(n).padStart(2, "0"); }
  // The server says how old the episode was when it drew the card; count on from there
  // with this device's monotonic clock (a phone's wall clock may be minutes off).
  function tickTimers() {
    const now = performance.now();
    document.querySelectorAll(".timer[data-elapsed]").forEach((el) => {
      const elapsed = parseFloat(el.dataset.elapsed);
      if (isNaN(elapsed)) return;
      if (!el.dataset.seenAt) el.dataset.seenAt = String(now);
      const s = Math.max(0, Math.floor(elapsed + (now - parseFloat(el.dataset.seenAt)) / 1000));
      el.textContent = `${Math.floor(s / 60)}:${pad(s % 60)}`;
      const limit = parseFloat(el.dataset.limit), warning = parseFloat(el.dataset.warning);
      el.classList.toggle("over", !isNaN(limit) && s >= limit);
      el.classList.toggle("near", !isNaN(warning) && s >= warning && !(s >= limit));
    });
  }

  // ---- sound: a short two-tone chime from WebAudio (no audio file to fetch)
  let audio = null;
  function chime(critical) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
      const tones = critical ? [880, 660, 880, 660] : [660, 880];
      tones.forEach((f, i) => {
        const o = audio.createOscillator(), g = audio.createGain();
        o.frequency.value = f;
        g.gain.setValueAtTime(0.0001, audio.currentTime + i * 0.22);
        g.gain.exponentialRampToValueAtTime(0.3, audio.currentTime + i * 0.22 + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + i * 0.22 + 0.2);
        o.connect(g).connect(audio.destination);
        o.start(audio.currentTime + i * 0.22);
        o.stop(audio.currentTime + i * 0.22 + 0.21);
      });
    } catch (e) { /* no sound on this device: the banner still shows */ }
    if (critical && navigator.vibrate) navigator.vibrate([200, 100, 200, 100, 400]);
  }
  // Browsers allow sound only after the reader has touched the page once.
  document.addEventListener("pointerdown", () => {
    try { audio = audio || new (window.AudioContext || window.webkitAudioContext)(); audio.resume(); } catch (e) {}
  }, { once: true });

  function banner(text, severity) {
    const b = document.getElementById("banner");
    if (!b) return;
    document.getElementById("banner-text").textContent = text;
    b.className = "banner sev-" + severity;
    b.hidden = false;
  }

  // ---- live updates
  function fillCsrf(root) {
    const token = body.dataset.csrf || "";
    root.querySelectorAll('input[name="csrf_token"]').forEach((i) => { if (!i.value) i.value = token; });
  }

  function replace(id, html, container) {
    const t = document.createElement("template");
    t.innerHTML = html.trim();
    const fresh = t.content.firstElementChild;
    if (!fresh) return null;
    fillCsrf(fresh);
    localise(fresh);
    const old = document.getElementById(id);
    if (old) old.replaceWith(fresh);
    else if (container) {
      const empty = container.querySelector(".empty");
      if (empty) empty.remove();
      container.prepend(fresh);
    }
    if (window.htmx) window.htmx.process(fresh);
    return fresh;
  }

  function connect() {
    if (!body.dataset.live) return;
    const status = document.getElementById("live-status");
    const source = new EventSource("/events");
    source.onopen = () => { if (status) status.hidden = true; };
    source.onerror = () => { if (status) status.hidden = false; };
    source.addEventListener("room", (e) => {
      const d = JSON.parse(e.data);
      replace(d.id, d.html, document.getElementById("rooms"));
      tickTimers();
    });
    source.addEventListener("alert", (e) => {
      const d = JSON.parse(e.data);
      const feed = document.getElementById("alert-feed");
      if (d.state === "resolved" && body.dataset.live === "board") {
        const old = document.getElementById(d.id);
        if (old) old.remove();
      } else {
        replace(d.id, d.html, feed);
      }
      if (d.state === "raised" || d.state === "escalated") {
        banner(`${d.severity.toUpperCase()}: ${d.title}. ${d.message}`, d.severity);
        chime(d.severity === "critical");
      }
    });
  }

  // ---- the record form: local date-time in, zone offset along
  function recordForm() {
    const offset = document.querySelector("[data-tz-offset]");
    if (offset) offset.value = String(new Date().getTimezoneOffset());
    // The offset of the time entered, not of today: across a daylight-saving change they
    // differ by an hour. A "YYYY-MM-DDTHH:MM" string is parsed as local time.
    const form = document.getElementById("record-form");
    if (form && offset) form.addEventListener("submit", () => {
      const at = form.querySelector('input[name="parent_notified_at"]');
      const d = at && at.value ? new Date(at.value) : new Date();
      if (!isNaN(d)) offset.value = String(d.getTimezoneOffset());
    });
    document.querySelectorAll("input[data-value]").forEach((input) => {
      const v = input.dataset.value;
      if (!v) return;
      if (/([+-]\d\d:\d\d|Z)$/.test(v)) {
        const d = new Date(v);
        const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
        input.value = local.toISOString().slice(0, 16);
      } else {
        input.value = v.slice(0, 16);
      }
    });
  }

  // ---- Web Push
  function b64ToBytes(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const raw = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }
  async function subscribePush() {
    const out = document.getElementById("push-status");
    const key = document.querySelector('meta[name="vapid-key"]');
    try {
      if (!("serviceWorker" in navigator) || !("PushManager" in window) || !key) throw new Error("this browser cannot receive push alerts");
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error("notifications are blocked for this site");
      const reg = await navigator.serviceWorker.ready;
      const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(key.content) });
      const r = await fetch("/api/v1/push/subscriptions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": body.dataset.csrf || "" },
        body: JSON.stringify(sub.toJSON()),
      });
      if (!r.ok) throw new Error(`the server said ${r.status}`);
      out.textContent = "On: this device will be alerted.";
    } catch (e) {
      out.textContent = "Not turned on: " + e.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    localise(document);
    tickTimers();
    setInterval(tickTimers, 1000);
    recordForm();
    connect();
    const close = document.getElementById("banner-close");
    if (close) close.addEventListener("click", () => { document.getElementById("banner").hidden = true; });
    const sub = document.getElementById("push-subscribe");
    if (sub) sub.addEventListener("click", subscribePush);
    const test = document.getElementById("sound-test");
    if (test) test.addEventListener("click", () => chime(true));
    if ("serviceWorker" in navigator && body.dataset.role) {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
    }
  });
  document.addEventListener("htmx:afterSwap", (e) => { localise(e.target); fillCsrf(e.target); });
})();
