// Roomwatch service worker: shows Web Push alerts and keeps a small offline shell.
// Live data is never cached: a stale board is worse than no board.
"use strict";
const SHELL = "roomwatch-shell-v1";
const ASSETS = ["/static/app.css", "/static/app.js", "/static/icon.svg", "/static/vendor/htmx-2.0.11.min.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(ASSETS)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !url.pathname.startsWith("/static/")) return;
  event.respondWith(caches.match(event.request).then((hit) => hit || fetch(event.request)));
});

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { title: "Roomwatch alert", body: event.data ? event.data.text() : "" }; }
  const critical = data.severity === "critical";
  event.waitUntil(self.registration.showNotification(data.title || "Roomwatch alert", {
    body: data.body || "",
    tag: data.alert_id || undefined,
    renotify: true,
    requireInteraction: critical,
    silent: false,
    vibrate: critical ? [200, 100, 200, 100, 400] : [200],
    icon: "/static/icon-192.png",
    badge: "/static/icon-192.png",
    data: { url: data.url || "/alerts" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = (event.notification.data && event.notification.data.url) || "/alerts";
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((wins) => {
    for (const w of wins) { if ("focus" in w) { w.navigate(target); return w.focus(); } }
    return self.clients.openWindow(target);
  }));
});
