"""The web app in a real browser (Debian's Chromium, headless, driven by Playwright): sign
in, an MQTT message puts an alert on the open board without a reload, acknowledge it, fill
in and save the incident record, and an auditor can change nothing. Screenshots at a phone's
and a desktop's width are written to ``test-artifacts/`` for a person to look at."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from conftest import wait_until
from roomwatch.collector import incidents
from web_stack import PASSWORD, WebStack

CHROMIUM = os.environ.get("ROOMWATCH_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
#: Flags for a sandbox with no network beyond loopback (and root, hence no-sandbox).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def sign_in(
    browser: Browser,
    stack: WebStack,
    username: str,
    viewport: ViewportSize,
    clock: datetime | None = None,
) -> Page:
    context = browser.new_context(viewport=viewport)
    stack.closers.append(context.close)
    page = context.new_page()
    if clock is not None:
        page.clock.install(time=clock)
    page.goto(stack.url + "/")
    expect(page).to_have_url(stack.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(stack.url + "/")
    return page


def no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def test_the_live_board_acknowledge_and_record(browser: Browser, web_stack: WebStack) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    agent = web_stack.agent()
    agent.status()
    started = datetime.now(UTC) - timedelta(minutes=4)
    agent.episode("started", "ep-browser-1", started)
    agent.telemetry(occupied=True, door_closed=True, staff_present=True, episode_id="ep-browser-1")
    assert wait_until(
        lambda: web_stack.collector.room_snapshot(("lincoln", "room-101")) is not None
    )

    page = sign_in(browser, web_stack, "sam", PHONE)
    card = page.locator("#room-lincoln-room-101")
    expect(card).to_be_visible()
    expect(card.locator(".timer")).to_have_text(re.compile(r"^4:\d\d$"))  # began 4 min ago
    page.wait_for_function("document.querySelector('#live-status').hidden === true")
    # Wait until the page's event stream is connected before the message goes out.
    assert wait_until(lambda: web_stack.web.app.state.web.hub.clients >= 1, 5)

    sent = time.monotonic()
    agent.telemetry(
        occupied=True,
        door_closed=True,
        door_locked=True,
        staff_present=True,
        lock_permit=False,
        episode_id="ep-browser-1",
    )
    alert = page.locator("#alert-feed li.sev-critical")
    expect(alert).to_contain_text("door locked while occupied", timeout=2000)
    shown_after = time.monotonic() - sent
    expect(card.locator("text=LOCKED")).to_be_visible(timeout=2000)
    expect(page.locator("#banner")).to_be_visible()
    print(f"alert on the board {shown_after * 1000:.0f} ms after the MQTT message")
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "board-390.png"), full_page=True)

    alert.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alert-feed li.state-acknowledged")).to_contain_text("acknowledged by Sam")
    acked = [a for a in web_stack.collector.open_alerts() if a.acknowledged_by]
    assert [a.acknowledged_by for a in acked] == [web_stack.user_ids["sam"]]

    agent.episode("ended", "ep-browser-1", started)
    # The writer stores in batches: wait for the end and the acknowledgement to be stored.
    assert wait_until(lambda: _episode_settled(web_stack, "ep-browser-1"), 5)
    page.goto(web_stack.url + "/episodes/ep-browser-1")
    expect(page.locator(".timeline")).to_contain_text("door LOCKED")
    expect(page.locator(".timeline")).to_contain_text("acknowledged by")
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "episode-390.png"), full_page=True)

    page.get_by_role("link", name="Incident record").click()
    page.get_by_label("Student (district reference)").fill("S-2041")
    page.get_by_label("Precipitating factors").fill("Refused to leave the gym; hit a peer.")
    page.get_by_label("Staff who initiated").fill("M. Park")
    page.get_by_label("Staff who supervised").fill("M. Park")
    page.get_by_label("Staff who removed").fill("J. Ortiz")
    page.get_by_label("Student's behavior before").fill("Shouting, throwing balls")
    page.get_by_label("Student's behavior during").fill("Calmed after 3 minutes")
    page.get_by_label("Student's behavior after").fill("Returned to class")
    page.get_by_label("Injury to the student").select_option("no")
    page.get_by_label("Injury to staff").select_option("no")
    page.get_by_label("Parent notified by").fill("J. Ortiz")
    page.get_by_label("Parent / guardian notified").fill("mother")
    page.get_by_label("How").select_option("phone")
    page.get_by_label("When").fill("2026-11-23T14:30")
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "record-390.png"), full_page=True)
    page.get_by_role("button", name="Save record").click()
    expect(page.locator(".notice")).to_contain_text("Saved (version 1)")
    stored = incidents.load(web_stack.collector.store.engine, "ep-browser-1")
    assert stored.record.missing() == []
    assert stored.record.student_ref == "S-2041"
    assert stored.updated_by == web_stack.user_ids["sam"]
    offset = page.evaluate("new Date(2026, 10, 23, 14, 30).getTimezoneOffset()")
    expected = datetime(2026, 11, 23, 14, 30, tzinfo=UTC) + timedelta(minutes=offset)
    assert stored.record.parent_notified_at == expected

    desktop = sign_in(browser, web_stack, "ada", DESKTOP)
    desktop.screenshot(path=str(ARTIFACTS / "board-desktop.png"), full_page=True)
    for path in ("/alerts", "/rooms", "/audit", "/account", "/reports"):
        desktop.goto(web_stack.url + path)
        no_sideways_scroll(desktop)
    desktop.goto(web_stack.url + "/episodes/ep-browser-1")
    expect(desktop.locator(".verdict")).to_contain_text("Verdict")
    desktop.screenshot(path=str(ARTIFACTS / "episode-desktop.png"), full_page=True)
    desktop.goto(web_stack.url + "/reports")
    with desktop.expect_download() as download:
        desktop.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename.endswith(".pdf")
    desktop.goto(web_stack.url + "/audit")
    expect(desktop.locator("table")).to_contain_text("incident.created")
    expect(desktop.locator("table")).to_contain_text("alert.acknowledged")


def test_an_auditor_can_change_nothing(browser: Browser, web_stack: WebStack) -> None:
    agent = web_stack.agent()
    agent.status()
    started = datetime.now(UTC) - timedelta(minutes=2)
    agent.episode("started", "ep-audit-1", started)
    agent.telemetry(
        occupied=True,
        door_closed=True,
        door_locked=True,
        lock_permit=False,
        episode_id="ep-audit-1",
    )
    assert wait_until(lambda: bool(web_stack.collector.open_alerts()), 5)
    assert wait_until(lambda: _episode_stored(web_stack, "ep-audit-1"), 5)

    # This phone's clock is years off: the episode timer must still be right.
    page = sign_in(browser, web_stack, "aud", PHONE, clock=datetime(2020, 1, 1, tzinfo=UTC))
    expect(page.locator(".timer")).to_have_text(re.compile(r"^2:\d\d$"))  # began 2 min ago
    expect(page.locator("#alert-feed li.sev-critical")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page.goto(web_stack.url + "/episodes/ep-audit-1/record")
    expect(page.get_by_role("button", name="Save record")).to_have_count(0)
    expect(page.get_by_label("Precipitating factors")).to_be_disabled()
    page.goto(web_stack.url + "/rooms")
    expect(page.get_by_role("button", name="Register")).to_have_count(0)

    # Going around the page: the server refuses every change, CSRF token or not.
    csrf = page.evaluate("document.body.dataset.csrf")
    alert_id = web_stack.collector.open_alerts()[0].alert_id
    for method, path, data in [
        ("POST", f"/alerts/{alert_id}/acknowledge", {"csrf_token": csrf}),
        ("POST", "/episodes/ep-audit-1/record", {"csrf_token": csrf, "version": "0"}),
        ("POST", "/rooms", {"csrf_token": csrf, "site": "lincoln", "room": "x"}),
        ("POST", "/account/tokens", {"csrf_token": csrf, "name": "x"}),
    ]:
        answer = page.request.fetch(web_stack.url + path, method=method, form=data)
        assert answer.status == 403, (path, answer.status)
    assert not any(a.acknowledged_by for a in web_stack.collector.open_alerts())
    with pytest.raises(AssertionError):
        expect(page.locator("text=Saved")).to_be_visible(timeout=100)


def _episode_settled(stack: WebStack, episode_id: str) -> bool:
    """The episode has ended and each of its alert steps so far is stored."""
    from roomwatch.collector.read import alerts, episodes

    engine = stack.collector.store.engine
    episode = episodes.episode(engine, episode_id)
    if episode is None or episode.ended_at is None:
        return False
    ids = [a.alert_id for a in alerts.alerts(engine, episode_id=episode_id)]
    return any(step.state == "acknowledged" for step in alerts.alert_steps(engine, ids))


def _episode_stored(stack: WebStack, episode_id: str) -> bool:
    from roomwatch.collector.read import episodes

    return episodes.episode(stack.collector.store.engine, episode_id) is not None
