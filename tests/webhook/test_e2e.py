"""End to end on loopback: a message in on each channel -> the real Rasa with the trained model and
the real action server -> the reply delivered to the fake provider by the real client library.
Then Rasa is stopped mid-conversation: the person still gets the safe reply, a danger message still
reaches the queue, and the kept messages are answered when Rasa is back. Last, every log and every
database column outside the sealed ones is scanned for what people wrote and how to reach them."""
import logging
import re
import sqlite3
import time

import pytest
import requests
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.nlu.normalize import fold
from tests.system import PUBLIC, TG_SECRET, System
from webhook.db import transaction
from webhook.dispatcher import Worker
from webhook.models import Case, Message

pytestmark = [pytest.mark.model, pytest.mark.slow]


# Everything people wrote and every address used in this module (for the final scan).
WRITTEN: list[str] = []
ADDRESSES: list[str] = []


@pytest.fixture(scope="module")
def system(model_path, tmp_path_factory):
    from webhook.logs import JsonFormatter

    sys_ = System(model_path, tmp_path_factory.mktemp("e2e"))
    # the in-process gateway logs at INFO into the module's log directory, as `helpline gateway` would
    handler = logging.FileHandler(sys_.log_dir / "gateway.log")
    handler.setFormatter(JsonFormatter())
    root, level = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.close()
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def sms(system, sender, body):
    WRITTEN.append(body)
    ADDRESSES.append(sender)
    params = system.twilio.inbound_params(sender, body)
    sig = RequestValidator(system.twilio.auth_token).compute_signature(PUBLIC + "/webhooks/sms", params)
    r = requests.post(system.gateway_url + "/webhooks/sms", data=params, headers={"X-Twilio-Signature": sig}, timeout=10)
    assert r.status_code == 200, r.text
    return params["MessageSid"]


_update_ids = iter(range(700000000, 800000000))


def telegram(system, chat_id, text):
    WRITTEN.append(text)
    ADDRESSES.append(str(chat_id))
    update = system.telegram.make_update(next(_update_ids), chat_id, text)
    r = requests.post(system.gateway_url + "/webhooks/telegram", json=update,
                      headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}, timeout=10)
    assert r.status_code == 200, r.text


def zalo(system, user_id, text):
    WRITTEN.append(text)
    ADDRESSES.append(user_id)
    raw, headers = system.zalo.signed_webhook(system.zalo.make_event("user_send_text", user_id, text))
    r = requests.post(system.gateway_url + "/webhooks/zalo", data=raw, headers=headers, timeout=10)
    assert r.status_code == 200, r.text


def test_sms_question_answered_unaccented(system):
    sms(system, "+84905100001", "cho hoi so dien thoai duong day nong ho tro bao luc gia dinh")
    sent = system.twilio.wait_for(lambda m: m["to"] == "+84905100001", timeout=60)
    text = " ".join(m["body"] for m in system.twilio.sent if m["to"] == "+84905100001")
    assert "113" in text and "111: tre em bi xam hai; bao tin mua ban nguoi, moi lua tuoi" in text
    assert "1800" not in text and "[[" not in text          # the counselling line is not verified
    assert all(len(m["body"]) <= 160 and m["body"].isascii() for m in sent)


def test_the_counselling_line_reaches_sms_once_a_supervisor_records_it_answers(system):
    """Rasa's reply carries the marker; the gateway renders it from the check recorded in the
    console, then the SMS channel strips the accents."""
    import datetime as dt

    from webhook.kbstate import record_check

    record_check(system.gw, "service", "social_work_center", dt.date.today(), "confirmed", "hoa", hours="24/7")
    try:
        sms(system, "+84905100002", "so dien thoai duong day nong la so nao")
        system.twilio.wait_for(lambda m: m["to"] == "+84905100002", timeout=60)
        assert system.gw.dispatcher.drain(30)
        text = " ".join(m["body"] for m in system.twilio.sent if m["to"] == "+84905100002")
        assert "1800 1581: tu van, ho tro (mien phi, 24/7)" in text
    finally:
        record_check(system.gw, "service", "social_work_center", dt.date.today(), "no_answer", "hoa")


def test_telegram_danger_gets_numbers_first_and_reaches_the_queue(system):
    telegram(system, 6660001, "chong em dang cam dao doi giet em, cuu em voi")
    sent = system.telegram.wait_for(lambda m: m["chat_id"] == 6660001, timeout=60, count=2)
    assert all(n in sent[0]["text"] for n in ("113", "115", "111"))
    deadline = time.time() + 20
    while time.time() < deadline:
        with transaction(system.gw.Session) as s:
            cases = list(s.execute(select(Case)).scalars())
        if any(c.source == "rules" for c in cases):
            break
        time.sleep(0.2)
    assert any(c.risk == "imminent" for c in cases)
    # the action server's escalation reached the gateway (nothing had to be journaled)
    assert not (system.tmp / "escalations.jsonl").exists()


def test_zalo_greeting_is_answered(system):
    zalo(system, "3512523625412001", "xin chào")
    sent = system.zalo.wait_for(lambda m: m["user_id"] == "3512523625412001", timeout=60)
    assert sent[0]["text"]


def test_web_chat_round_trip(system):
    s = requests.Session()
    token = s.post(system.gateway_url + "/webchat/api/session", timeout=10).json()["session"]
    h = {"X-Webchat-Session": token}
    WRITTEN.append("cho hoi ve tro giup phap ly")
    assert s.post(system.gateway_url + "/webchat/api/messages", json={"text": "cho hoi ve tro giup phap ly",
                                                                      "client_id": "c1"}, headers=h, timeout=10).status_code == 202
    deadline, out = time.time() + 60, []
    while time.time() < deadline and not out:
        msgs = s.get(system.gateway_url + "/webchat/api/messages?after=0", headers=h, timeout=10).json()["messages"]
        out = [m for m in msgs if m["direction"] == "out"]
        time.sleep(0.3)
    assert out and out[0]["text"]


def test_rasa_stopped_mid_conversation_safe_reply_queue_and_replay(system):
    telegram(system, 6660002, "xin chao")
    system.telegram.wait_for(lambda m: m["chat_id"] == 6660002, timeout=60)
    assert system.gw.dispatcher.drain(30)        # every reply to the greeting is out
    before = len([m for m in system.telegram.sent if m["chat_id"] == 6660002])
    system.stop_rasa()
    try:
        telegram(system, 6660002, "cho hoi ve luat phong chong bao luc gia dinh")
        sent = system.telegram.wait_for(lambda m: m["chat_id"] == 6660002, timeout=30, count=before + 1)
        assert "113" in sent[-1]["text"] and "111" in sent[-1]["text"]      # the safe reply, at once
        telegram(system, 6660002, "no dang danh em, em so lam, no cam dao")
        sent = system.telegram.wait_for(lambda m: m["chat_id"] == 6660002, timeout=30, count=before + 2)
        assert "113" in sent[-1]["text"]
        with transaction(system.gw.Session) as s:
            states = [m.state for m in s.execute(select(Message).order_by(Message.id)).scalars()]
            cases = list(s.execute(select(Case).where(Case.source == "rules")).scalars())
        assert states.count("deferred") >= 2
        assert any(c.risk in ("high", "imminent") for c in cases)
    finally:
        system.start_rasa()
    count_before_replay = len([m for m in system.telegram.sent if m["chat_id"] == 6660002])
    assert Worker(system.gw).run_once()["replayed"] >= 2
    sent = system.telegram.wait_for(lambda m: m["chat_id"] == 6660002, timeout=60, count=count_before_replay + 2)
    with transaction(system.gw.Session) as s:
        assert not list(s.execute(select(Message).where(Message.state == "deferred")).scalars())
    # replaying again sends nothing new
    n = len(system.telegram.sent)
    Worker(system.gw).run_once()
    time.sleep(0.5)
    assert len(system.telegram.sent) == n


def test_claim_pauses_the_real_rasa_and_hand_back_resumes_it(system):
    from webhook import pipeline, queue, replies
    from webhook.models import Conversation

    telegram(system, 6660003, "toi muon gap tu van vien")
    system.telegram.wait_for(lambda m: m["chat_id"] == 6660003, timeout=60)
    assert system.gw.dispatcher.drain(30)
    with transaction(system.gw.Session) as s:
        msg = s.execute(select(Message).order_by(Message.id.desc()).limit(1)).scalar_one()
        sender = s.get(Conversation, msg.conversation_id).rasa_sender
    case_id = pipeline.open_case(system.gw, msg.conversation_id, "none", None, "request", "bot", requested=True)

    def paused():
        r = requests.get(f"{system.rasa_url}/conversations/{sender}/tracker", params={"token": system.rasa_token},
                         timeout=10)
        return r.json()["paused"]

    assert queue.claim(system.gw, case_id, "lan") and paused() is True
    assert queue.hand_back(system.gw, case_id, "lan", outcome="advice_given")
    assert paused() is False
    sent = system.telegram.wait_for(lambda m: m["chat_id"] == 6660003 and m["text"] == system.gw.kb.render(replies.text(replies.HANDED_BACK)),
                                    timeout=30)
    assert sent


def test_statistics_take_the_topic_from_the_real_model(system):
    """The rules alone do not know "trợ giúp pháp lý" is a legal-aid question; the episode gets the
    topic from the intent the real Rasa model gave (read back from its tracker)."""
    from webhook.models import Episode

    sms(system, "+84905100077", "cho hoi ve tro giup phap ly mien phi")
    system.twilio.wait_for(lambda m: m["to"] == "+84905100077", timeout=60)
    deadline, eps = time.time() + 20, []
    while time.time() < deadline and not eps:
        with transaction(system.gw.Session) as s:
            eps = [e for e in s.execute(select(Episode).where(Episode.channel == "sms")).scalars()
                   if e.topic == "legal_aid"]
        time.sleep(0.2)
    assert eps and eps[0].gbv_type == "non_gbv" and eps[0].risk == "none"


# --- the privacy scan ----------------------------------------------------------------------------

def _needles() -> list[re.Pattern]:
    """What must not be found: every address (also without +84 / with a leading 0) and every
    message, whole and as runs of four words, accented or not."""
    pats = set()
    for address in ADDRESSES:
        digits = re.sub(r"\D", "", address)
        forms = {digits}
        if digits.startswith("84"):
            forms |= {digits[2:], "0" + digits[2:]}
        for form in forms:
            pats.add(r"(?<!\d)" + r"[ .-]?".join(form) + r"(?!\d)")
    for text in WRITTEN:
        words = fold(text).split()
        for i in range(max(1, len(words) - 3)):
            run = " ".join(words[i:i + 4])
            if len(run) >= 12:
                pats.add(re.escape(run))
    return [re.compile(p) for p in sorted(pats)]


def test_nothing_a_person_wrote_or_their_address_is_in_any_log_or_plain_column(system):
    """After the module's traffic (and more of it here, with names, a place and a danger message on
    every channel): every log file of every process, every column of every table except the
    sealed ``*_enc`` ones, and the database files' raw bytes hold none of it."""
    telegram(system, 906660911, "Em la Hoang Thi Tuyet o kiet 42 Tran Cao Van, chong em dang cam dao doi giet em")
    sms(system, "+84905100911", "Toi ten la Pham Van Khuong, vo toi bi danh o thon Zebra xa Tam Ky")
    zalo(system, "7712345000911", "chị Lê Thị Mộng Cầm bị chồng đánh gãy tay ở khối phố Quyết Thắng")
    system.telegram.wait_for(lambda m: m["chat_id"] == 906660911, timeout=60)
    system.twilio.wait_for(lambda m: m["to"] == "+84905100911", timeout=60)
    system.zalo.wait_for(lambda m: m["user_id"] == "7712345000911", timeout=60)
    assert system.gw.dispatcher.drain(60)
    time.sleep(1.0)                                  # the action server's escalations, Rasa's last lines
    needles = _needles()
    assert len(ADDRESSES) >= 3 and len(needles) > 30      # the scan has something to look for

    def hits(where: str, text: str) -> list[str]:
        low = fold(text)
        return [f"{where}: {p.pattern[:40]}" for p in needles if p.search(low)]

    found = []
    logs = sorted(system.log_dir.glob("*.log"))
    assert {"gateway.log", "rasa.log", "actions.log"} <= {p.name for p in logs}
    assert '"event": "case_opened"' in (system.log_dir / "gateway.log").read_text()   # the gateway's lines are there
    for path in logs:
        found += hits(path.name, path.read_text(errors="replace"))
    for path in system.tmp.rglob("*"):
        if path.is_file() and path.suffix not in (".log", ".db") and not path.name.endswith(("-wal", "-shm")):
            found += hits(str(path.relative_to(system.tmp)), path.read_bytes().decode("utf-8", "replace"))
    db = system.tmp / "gateway.db"
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        checked = 0
        for table in tables:
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")') if not r[1].endswith("_enc")]
            for col in cols:
                for (value,) in conn.execute(f'SELECT "{col}" FROM "{table}" WHERE "{col}" IS NOT NULL'):
                    checked += 1
                    found += hits(f"{table}.{col}", value.decode("utf-8", "replace") if isinstance(value, bytes)
                                  else str(value))
        assert checked > 500
    finally:
        conn.close()
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            found += hits(f"raw {path.name}", path.read_bytes().decode("utf-8", "replace"))
    assert found == []
