"""The counsellors' console in a real browser: Debian's headless Chromium, driven by Selenium
through chromedriver, against the gateway served over HTTP on loopback (the same threaded
server as production). A danger message arrives through the real Telegram webhook while the
queue page is open; the row appears live (server-sent events, no reload), the counsellor takes
the case, answers (the fake Telegram receives it), writes a note, sees the person's next
message arrive and resolves the case, which hands the conversation back to the bot. A second
test has two counsellors: the one who did not take the case sees it leave the queue and is
refused if they try to take it anyway. The browser's console must stay free of errors
(a strict CSP violation shows there).

Chromium and chromedriver must be installed (Debian: ``chromium chromium-driver``); without
them the tests are skipped, except in CI (``CI`` set), where they fail. The browser runs with
networking off except loopback, and the explicit driver path keeps Selenium Manager from ever
downloading anything."""
from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
import requests
from sqlalchemy import select

from tests.webhook.conftest import TG_SECRET, gateway_config, rows, settle
from webhook.db import transaction
from webhook.models import Case, CaseNote, Contact, Conversation, Followup

PASSWORD = "correct horse battery"
WAIT = 15.0                     # seconds for any one thing the page must show (a loaded 2-core box is slow)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-sync", "--disable-extensions", "--disable-component-update",
    "--disable-default-apps", "--no-default-browser-check", "--no-proxy-server", "--window-size=1400,1000",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (a dev dependency)")
    if not missing:
        return
    reason = f"headless browser test needs {' and '.join(missing)} (Debian: apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must install them", pytrace=False)
    pytest.skip(reason)


# --- the gateway on a real port ------------------------------------------------------------------

class Live:
    def __init__(self, base, app, gw, http):
        self.base, self.app, self.gw, self.http = base, app, gw, http

    def telegram(self, chat_id: int, text: str, update_id: int) -> None:
        """A person's message through the real Telegram webhook, over HTTP."""
        update = {"update_id": update_id, "message": {
            "message_id": update_id, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "A"}, "text": text}}
        resp = self.http.post(self.base + "/webhooks/telegram", json=update, timeout=WAIT,
                              headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
        assert resp.status_code == 200, resp.text


@pytest.fixture
def live(tmp_path, fakes):
    from webhook.app import create_app
    from webhook.console import auth
    from webhook.serve import make_server

    _need_browser()
    # bind first (port 0: the kernel picks a free one), then build the app that knows its URL
    server = make_server("127.0.0.1", 0, lambda environ, start_response: [])
    base = f"http://127.0.0.1:{server.server_port}"
    app = create_app(gateway_config(tmp_path, fakes, public_url=base))
    server.app = app
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    for name in ("lan", "minh"):
        auth.create_staff(gw, name, PASSWORD, "counsellor", name.title())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    http = requests.Session()
    http.trust_env = False              # never a proxy for loopback
    try:
        yield Live(base, app, gw, http)
    finally:
        http.close()
        server.shutdown()
        server.server_close()
        thread.join(5)
        gw.close()


@pytest.fixture
def browser(live):
    """A factory of headless Chromium sessions; all quit before the gateway stops."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def _open():
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for flag in CHROME_FLAGS:
            o.add_argument(flag)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    try:
        yield _open
    finally:
        for driver in drivers:
            try:
                driver.quit()
            except Exception:                   # noqa: BLE001 - a dead browser must not hide the test's result
                pass


# --- helpers -----------------------------------------------------------------------------------------

def wait(driver, condition, message: str, timeout: float = WAIT):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition, message)


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def log_in(driver, base: str, username: str) -> None:
    driver.get(base + "/console/login")
    css(driver, "#login-username")[0].send_keys(username)
    css(driver, "#login-password")[0].send_keys(PASSWORD)
    css(driver, "#login-submit")[0].click()
    wait(driver, lambda d: d.current_url == base + "/console/", f"{username}: no queue page after logging in")
    # the live feed is open: from now on a new case must show up without a reload
    wait(driver, lambda d: "on" in css(d, "#live")[0].get_attribute("class").split(), "the live feed did not connect")
    assert css(driver, "#live")[0].text == "trực tiếp"                          # Vietnamese by default
    driver.execute_script("window.__sameLoad = true;")


def same_page_load(driver) -> bool:
    return driver.execute_script("return window.__sameLoad === true;")


def waiting_ids(driver) -> list[str]:
    return [tr.get_attribute("data-case-id") for tr in css(driver, "#waiting tbody tr[data-case-id]")]


def transcript(driver, who: str) -> list[str]:
    return [li.text for li in css(driver, f"#transcript li.msg-{who} .msg-text")]


def browser_errors(driver, expected: tuple = ()) -> list[dict]:
    """Console errors of the whole session (CSP violations, script errors, failed requests), minus
    the favicon the console does not have and the ``expected`` ones (substrings)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
            and not any(x in e.get("message", "") for x in ("/favicon.ico", *expected))]


def open_case_for(gw, chat_id: int) -> Case:
    for case in rows(gw, Case):
        if case.status != "closed":
            with transaction(gw.Session) as s:
                conv = s.get(Conversation, case.conversation_id)
                if gw.vault.open(s.get(Contact, conv.contact_id).address_enc) == str(chat_id):
                    return case
    raise AssertionError(f"no open case for chat {chat_id}")


# --- the tests ---------------------------------------------------------------------------------------

def test_a_case_from_live_queue_to_resolve_in_the_browser(live, browser, fakes):
    from selenium.webdriver.support.ui import Select

    gw, base, tg = live.gw, live.base, fakes["telegram"]
    chat = 7770001
    d = browser()
    log_in(d, base, "lan")
    assert waiting_ids(d) == [] and css(d, "#waiting-empty")[0].is_displayed()

    # a danger message arrives while the page is open: the row appears through the feed
    live.telegram(chat, "chồng tôi dọa giết tôi", update_id=1)
    wait(d, lambda d: waiting_ids(d), "the new case did not appear in the queue without a reload")
    case = open_case_for(gw, chat)
    assert case.risk == "high" and waiting_ids(d) == [str(case.id)]
    row = css(d, f'#waiting tr[data-case-id="{case.id}"]')[0]
    assert "risk-row-high" in row.get_attribute("class").split() and "telegram" in row.text
    assert same_page_load(d), "the queue page reloaded instead of updating live"
    assert css(d, "#waiting-count")[0].text == "1" and not css(d, "#waiting-empty")[0].is_displayed()

    # take it: the case page, with the person's message
    css(d, f'.claim-btn[data-case-id="{case.id}"]')[0].click()
    wait(d, lambda d: d.current_url == f"{base}/console/cases/{case.id}", "claiming did not open the case page")
    assert css(d, "#case")[0].get_attribute("data-case-id") == str(case.id)
    wait(d, lambda d: "chồng tôi dọa giết tôi" in transcript(d, "person"),
         "the person's message is not in the transcript")
    assert css(d, "#reply-form")[0].is_displayed() and css(d, "#case-actions")[0].is_displayed()
    assert str(chat) not in d.find_element("css selector", "main").text          # the chat id stays masked
    d.execute_script("window.__sameLoad = true;")

    # reply: out on Telegram to that chat, exactly this text, and the state shows in the transcript
    reply = "Chào bạn, mình là Lan, tư vấn viên. Bạn có đang ở nơi an toàn không?"
    css(d, "#reply-text")[0].send_keys(reply)
    css(d, "#reply-send")[0].click()
    tg.wait_for(lambda m: m.get("text") == reply, timeout=WAIT)
    assert [str(m["chat_id"]) for m in tg.sent if m.get("text") == reply] == [str(chat)]

    def reply_state(d):
        for li in css(d, "#transcript li.msg-counsellor"):
            if li.find_element("css selector", ".msg-text").text == reply:
                state = li.find_element("css selector", ".msg-state").get_attribute("data-state")
                return state if state in ("sent", "delivered") else None
        return None
    state = wait(d, reply_state, "the reply's delivery state did not become sent/delivered")
    shown = css(d, "#transcript li.msg-counsellor .msg-state")[-1].text
    assert shown == {"sent": "đã gửi", "delivered": "đã đến máy"}[state]
    assert css(d, "#reply-text")[0].get_attribute("value") == ""

    # an internal note: listed, sealed in the database, never sent to the person
    note = "Đã hướng dẫn kế hoạch an toàn, hẹn gọi lại."
    css(d, "#note-text")[0].send_keys(note)
    css(d, "#note-add")[0].click()
    wait(d, lambda d: [n.text for n in css(d, "#notes li.note .note-text")] == [note], "the note is not listed")
    (stored,) = rows(gw, CaseNote)
    assert stored.case_id == case.id and stored.author == "lan" and "kế hoạch".encode() not in bytes(stored.body_enc)
    assert not any(note in (m.get("text") or "") for m in tg.sent)

    # the person writes again: held for the counsellor (not sent to Rasa), shown live
    rasa_calls = len(fakes["rasa"].calls)
    live.telegram(chat, "cảm ơn chị", update_id=2)
    wait(d, lambda d: transcript(d, "person")[-1:] == ["cảm ơn chị"], "the person's new message did not appear live")
    settle(gw)
    assert len(fakes["rasa"].calls) == rasa_calls
    assert same_page_load(d), "the case page reloaded instead of updating live"

    # resolve: referred to the police and legal aid, help received; back to the queue
    Select(css(d, "#resolve-outcome")[0]).select_by_value("referred")
    for box in ("#ref-police", "#ref-legal_aid", "#help-yes"):
        css(d, box)[0].click()
    assert not css(d, "#followup-consent")[0].is_selected()
    css(d, "#resolve-submit")[0].click()
    wait(d, lambda d: d.current_url == base + "/console/", "resolving did not go back to the queue")
    wait(d, lambda d: "on" in css(d, "#live")[0].get_attribute("class").split(), "the live feed did not reconnect")
    assert waiting_ids(d) == [] and css(d, "#mine tbody tr") == []

    (c,) = rows(gw, Case, Case.id == case.id)
    assert (c.status, c.outcome, c.referrals, c.help_received, c.claimed_by) == (
        "closed", "referred", "police,legal_aid", "yes", "lan")
    with transaction(gw.Session) as s:
        conv = s.get(Conversation, c.conversation_id)
        mode, sender = conv.mode, conv.rasa_sender
    assert mode == "bot"
    assert (sender, [{"event": "resume"}]) in fakes["rasa"].events
    handed = tg.wait_for(lambda m: "Tư vấn viên đã kết thúc" in (m.get("text") or ""), timeout=WAIT)
    assert all(str(m["chat_id"]) == str(chat) for m in handed if "Tư vấn viên đã kết thúc" in (m.get("text") or ""))
    with transaction(gw.Session) as s:
        assert s.execute(select(Followup)).first() is None           # no consent ticked: no follow-up

    assert browser_errors(d) == []


def test_two_counsellors_the_other_sees_the_case_go_and_cannot_take_it(live, browser, fakes):
    gw, base = live.gw, live.base
    chat = 7770002
    lan, minh = browser(), browser()
    log_in(lan, base, "lan")
    log_in(minh, base, "minh")
    queue_window = minh.current_window_handle

    live.telegram(chat, "nó dọa giết tôi, tôi đang trốn trong nhà tắm", update_id=11)
    for d in (lan, minh):
        wait(d, lambda d: waiting_ids(d), "the new case did not reach every open console")
    case = open_case_for(gw, chat)
    assert case.risk == "imminent" and waiting_ids(lan) == waiting_ids(minh) == [str(case.id)]
    assert lan.title.startswith("(!) ") and minh.title.startswith("(!) ")     # imminent: flagged in the tab title

    # Minh also has the case page open (a second window) when Lan takes the case
    minh.switch_to.new_window("window")
    minh.get(f"{base}/console/cases/{case.id}")
    wait(minh, lambda d: css(d, "#claim") and css(d, "#claim")[0].is_displayed(), "no take button on an open case")
    wait(minh, lambda d: transcript(d, "person"), "the transcript did not load")
    assert not css(minh, "#reply-form")[0].is_displayed()

    css(lan, f'.claim-btn[data-case-id="{case.id}"]')[0].click()
    wait(lan, lambda d: d.current_url == f"{base}/console/cases/{case.id}", "claiming did not open the case page")
    wait(lan, lambda d: css(d, "#reply-form")[0].is_displayed(), "the holder cannot reply")

    # Minh's queue drops the row without a reload
    minh.switch_to.window(queue_window)
    wait(minh, lambda d: waiting_ids(d) == [], "the taken case stayed in the other counsellor's queue")
    assert same_page_load(minh) and css(minh, "#waiting-empty")[0].is_displayed()
    assert not minh.title.startswith("(!)")

    # Minh's case page follows live: the take button goes away, the reply and action panels stay hidden
    case_window = [h for h in minh.window_handles if h != queue_window][0]
    minh.switch_to.window(case_window)
    wait(minh, lambda d: css(d, "#case")[0].get_attribute("data-status") == "claimed"
         and "lan" in css(d, "#case-status")[0].text, "the other counsellor's case page did not show the claim")
    assert not css(minh, "#reply-form")[0].is_displayed() and not css(minh, "#case-actions")[0].is_displayed()
    wait(minh, lambda d: not css(d, "#claim")[0].is_displayed(), "the take button stayed on a taken case")
    assert minh.current_url == f"{base}/console/cases/{case.id}"
    (c,) = rows(gw, Case, Case.id == case.id)
    assert (c.status, c.claimed_by) == ("claimed", "lan")

    assert browser_errors(lan) == []
    assert browser_errors(minh) == []


def test_a_campaign_from_draft_to_delivery_report_in_the_browser(live, browser, fakes):
    """Two supervisors in two browsers: one drafts a campaign for the people who subscribed on
    Telegram (DK, then CÓ, through the real webhook) and cannot approve it herself; the other
    approves and schedules it at the next action-month date; the bulk lane sends it at that time
    (the test runs it with the clock set there, so the test does not depend on today's date) and
    the open campaign page follows the delivery report without anyone reloading it."""
    import datetime as dt

    from selenium.webdriver.support.ui import Select

    from webhook.broadcast import calendar, sender
    from webhook.console import auth
    from webhook.hours import TZ

    gw, base, tg = live.gw, live.base, fakes["telegram"]
    for name in ("thu", "an"):
        auth.create_staff(gw, name, PASSWORD, "supervisor", name.title())
    live.telegram(7790001, "ĐĂNG KÝ", 1)
    live.telegram(7790001, "có", 2)
    settle(gw)
    tg.wait_for(2)
    tg.reset()

    a = browser()
    log_in(a, base, "thu")
    css(a, "#nav-campaigns")[0].click()
    wait(a, lambda d: css(d, "#new-campaign"), "no campaign form")
    css(a, "#campaign-name")[0].send_keys("Tháng hành động")
    Select(css(a, "#campaign-content")[0]).select_by_value("gbv_action_month")
    css(a, "#campaign-create")[0].click()
    wait(a, lambda d: css(d, "#campaign"), "the draft did not open")
    assert css(a, "#recipients-total")[0].text == "1" and css(a, "#needs-approver") and not css(a, "#approve")
    previews = {p.get_attribute("data-channel"): p.text for p in css(a, "pre.preview")}
    assert previews["telegram"].startswith("Chào bạn") and all(ord(ch) < 128 for ch in previews["sms"])
    campaign_url = a.current_url

    b = browser()
    log_in(b, base, "an")
    b.get(campaign_url)
    css(b, "#approve")[0].click()
    wait(b, lambda d: css(d, "#schedule"), "approving did not offer scheduling")
    assert css(b, "#campaign-approver")[0].text == "an"
    day = next(first for occ, first, last in calendar.upcoming(dt.date.today() + dt.timedelta(days=1))
               if occ.key == "gbv_action_month")
    start = dt.datetime(day.year, day.month, day.day, 10, 0, tzinfo=TZ)
    field = css(b, "#start")[0]
    b.execute_script("arguments[0].value = arguments[1];", field, start.strftime("%Y-%m-%dT%H:%M"))
    css(b, "#schedule")[0].click()
    wait(b, lambda d: css(d, "#pause"), "no pause button: not scheduled")
    assert css(b, "#campaign-state")[0].text == "đã hẹn"
    b.execute_script("window.__sameLoad = true;")

    out = sender.run_once(gw, now=start.timestamp() + 60, budget=5)           # the bulk lane, at that time
    assert out["sent"] == 1
    sent = tg.wait_for(1)[0]
    assert sent["chat_id"] in (7790001, "7790001") and sent["text"].startswith("Chào bạn")
    wait(b, lambda d: css(d, "#report tr[data-state='sent']"), "the delivery report did not follow the send")
    assert css(b, "#report-queued")[0].text == "0"
    assert browser_errors(a) == [] and browser_errors(b) == []
