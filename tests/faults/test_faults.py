"""Faults in the middle of traffic (issue 7): Rasa killed, the action server killed, the worker
killed, the PostgreSQL connections cut, a provider answering 500 or timing out, each while several
people write at once on SMS and Telegram, one or two of them in danger.

For each fault:
- every person hears from us: the safe reply at once while the bot cannot answer, the bot's answer
  once it can;
- a danger message gets the emergency numbers at once and opens a case in the counsellors' queue;
- after recovery every message is stored once and answered, every reply row is sent, and the
  provider's record matches the outbox one to one (no reply lost, none sent twice), except where
  the code documents otherwise (docs/gateway.md, "Sending is at-least-once"; asserted narrowly);
- no message text, phone number or chat id reaches the gateway's or the worker's log.

One system (real Rasa with the trained model, real action server, gateway over HTTP, fake
providers driven by the real client libraries) serves the module; each test has its own gateway
and database. Select with ``-m faults``.
"""
from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest

from tests.conftest import said
import requests
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.nlu.normalize import strip_diacritics
from bot.understanding import understand
from tests.fakes.providers import FakeTelegram
from tests.system import PUBLIC, TG_SECRET
from webhook import replies
from webhook.db import transaction
from webhook.models import Case, Contact, Message, Outbox
from webhook.pipeline import DEGRADED_SEQ, URGENT

pytestmark = [pytest.mark.faults, pytest.mark.model, pytest.mark.slow]

DANGER = "chồng tôi đang cầm dao đòi giết tôi"
DANGER_UNACCENTED = "chong toi dang cam dao doi giet toi"
QUESTIONS = [
    "cho hoi so dien thoai duong day nong ho tro bao luc gia dinh",
    "cho hoi ve tro giup phap ly mien phi",
    "bạo lực gia đình là gì vậy",
    "làm sao để ly hôn và giành quyền nuôi con",
    "cho hỏi cách báo công an khi bị bạo lực",
    "nạn nhân bạo lực gia đình có những quyền gì",
    "lam sao de xin lenh cam tiep xuc",
    "quấy rối tình dục ở nơi làm việc thì phải làm sao",
]
# answered by custom actions (the action server): action_find_services, action_answer_penalty
ACTION_QUESTIONS = ["tôi ở Đà Nẵng, có chỗ nào giúp không", "đánh vợ thì bị phạt thế nào"]
NUMBERS = ("113", "115", "111")       # verified; the counselling line only while verified and open
AT_ONCE = 10.0          # seconds: "at once" for the safe reply and the emergency numbers
SAFE_REPLIES = (replies.DEGRADED, replies.EMERGENCY, replies.SELF_HARM)


def test_the_messages_are_what_the_tests_assume():
    assert understand(DANGER, None).risk == "imminent"
    assert understand(DANGER_UNACCENTED, None).risk == "imminent"
    for text in QUESTIONS + ACTION_QUESTIONS:
        assert understand(text, None).risk not in URGENT, text
    assert all(n in replies.text(replies.EMERGENCY) for n in NUMBERS)


# --- people and their messages ------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    channel: str        # sms | telegram
    address: str        # phone number or chat id


def people(channel: str, n: int, base: int) -> list[Person]:
    """Addresses unique to a test (``base``), distinctive enough to be searched for in logs."""
    if channel == "sms":
        return [Person("sms", f"+849{base:03d}{i:05d}") for i in range(1, n + 1)]
    return [Person("telegram", str(8_100_000_000 + base * 1000 + i)) for i in range(1, n + 1)]


@dataclass
class Post:
    person: Person
    text: str
    pid: str            # the provider's message id: the gateway's de-duplication key
    at: float           # time.monotonic() when posted (the fakes record sends on the same clock)
    status: int


_update_ids = itertools.count(610_000_000 + random.randrange(10_000_000))


def post(system, person: Person, text: str) -> Post:
    at = time.monotonic()
    if person.channel == "sms":
        params = system.twilio.inbound_params(person.address, text)
        sig = RequestValidator(system.twilio.auth_token).compute_signature(PUBLIC + "/webhooks/sms", params)
        r = requests.post(system.gateway_url + "/webhooks/sms", data=params, headers={"X-Twilio-Signature": sig},
                          timeout=30)
        return Post(person, text, params["MessageSid"], at, r.status_code)
    update_id = next(_update_ids)
    update = system.telegram.make_update(update_id, int(person.address), text)
    r = requests.post(system.gateway_url + "/webhooks/telegram", json=update,
                      headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}, timeout=30)
    return Post(person, text, str(update_id), at, r.status_code)


class Traffic:
    """People writing at the same time: each person's messages in order from a thread of their
    own, at random moments within ``spread`` seconds."""

    def __init__(self, system):
        self.system = system
        self.posts: list[Post] = []
        self.errors: list[str] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def burst(self, items: list[tuple[Person, str]], spread: float = 1.0) -> "Traffic":
        by_person: dict[Person, list[str]] = defaultdict(list)
        for person, text in items:
            by_person[person].append(text)
        for person, texts in by_person.items():
            t = threading.Thread(target=self._write, args=(person, texts, spread), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _write(self, person: Person, texts: list[str], spread: float) -> None:
        for text in texts:
            time.sleep(random.uniform(0, spread / len(texts)))
            try:
                p = post(self.system, person, text)
            except Exception as exc:              # the webhook itself failed: the test fails
                with self._lock:
                    self.errors.append(f"{person.channel}: {type(exc).__name__}: {exc}")
                continue
            with self._lock:
                self.posts.append(p)

    def join(self, timeout: float = 90) -> None:
        for t in self._threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "a webhook call hung"
        self._threads = []
        assert not self.errors, self.errors
        bad = [(p.person.channel, p.status) for p in self.posts if p.status != 200]
        assert not bad, f"webhooks not answered 200: {bad}"

    def danger(self) -> list[Post]:
        return [p for p in self.posts if p.text in (DANGER, DANGER_UNACCENTED)]

    def people(self) -> set[Person]:
        return {p.person for p in self.posts}


# --- what the providers received ----------------------------------------------------------------

def sends(system, person: Person | None = None) -> list[dict]:
    """Messages the fake providers accepted, in one shape: channel, to, id, text, at."""
    out = [{"channel": "sms", "to": m["to"], "id": m["sid"], "text": m["body"], "at": m["at"]}
           for m in system.twilio.sent]
    out += [{"channel": "telegram", "to": str(m["chat_id"]), "id": str(m["message_id"]), "text": m["text"],
             "at": m["at"]} for m in system.telegram.sent]
    return [s for s in out if person is None or (s["channel"], s["to"]) == (person.channel, person.address)]


def send_calls(system, channel: str) -> list[tuple[str, str, float]]:
    """Every send request the provider received, accepted or not: (to, text, at)."""
    if channel == "sms":
        return [(c.form.get("To"), c.form.get("Body"), c.at) for c in system.twilio.calls
                if c.method == "POST" and c.path.endswith("/Messages.json")]
    return [(str(FakeTelegram._params(c).get("chat_id")), FakeTelegram._params(c).get("text"), c.at)
            for c in system.telegram.calls_to("/sendMessage")]


def rendered(gw, channel: str, name: str) -> list[str]:
    """A gateway sentence as the channel sends it (SMS: unaccented, split)."""
    return gw.adapters[channel].render(said(gw, name))


def safe_texts(gw, channel: str) -> set[str]:
    return {part for name in SAFE_REPLIES for part in rendered(gw, channel, name)}


def wait_until(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- what the gateway holds ----------------------------------------------------------------------

@dataclass
class Ledger:
    messages: dict[tuple[str, str], Message]          # (channel, provider id) -> message
    rows: list[Outbox]
    address: dict[int, str]                           # contact id -> address
    cases: list[Case]
    by_message: dict[int, list[Outbox]] = field(default_factory=dict)

    def rows_of(self, person: Person) -> list[Outbox]:
        return [r for r in self.rows if r.channel == person.channel and self.address[r.contact_id] == person.address]

    def message(self, p: Post) -> Message:
        return self.messages[(p.person.channel, p.pid)]


def read(gw) -> Ledger:
    with transaction(gw.Session) as s:
        msgs = list(s.execute(select(Message).order_by(Message.id)).scalars())
        rows = list(s.execute(select(Outbox).order_by(Outbox.id)).scalars())
        contacts = list(s.execute(select(Contact)).scalars())
        cases = list(s.execute(select(Case).order_by(Case.id)).scalars())
    stored = Counter((m.channel, m.provider_msg_id) for m in msgs)
    assert all(n == 1 for n in stored.values()), "a message stored twice"
    ledger = Ledger({(m.channel, m.provider_msg_id): m for m in msgs}, rows,
                    {c.id: gw.vault.open(bytes(c.address_enc)) for c in contacts}, cases)
    for r in rows:
        ledger.by_message.setdefault(r.source_message_id, []).append(r)
    return ledger


def settled(gw, traffic: Traffic) -> bool:
    with transaction(gw.Session) as s:
        states = Counter(m.state for m in s.execute(select(Message)).scalars())
        unsent = [r.state for r in s.execute(select(Outbox)).scalars() if r.state in ("queued", "sending")]
    spooled = list(gw.spool.dir.glob("*.msg")) if gw.spool.dir.is_dir() else []
    return sum(states.values()) == len(traffic.posts) and set(states) <= {"answered"} and not unsent and not spooled


def wait_settled(system, traffic: Traffic, timeout: float) -> Ledger:
    """Every message stored and answered, every reply sent, and then a quiet second and a half at
    the providers (the worker's sweeps keep running meanwhile)."""
    gw = system.gw
    try:
        wait_until(lambda: settled(gw, traffic), timeout, "every message answered and every reply sent",
                   interval=0.5)
    except AssertionError:
        with transaction(gw.Session) as s:
            states = Counter(m.state for m in s.execute(select(Message)).scalars())
            out = Counter((r.state, r.error_code) for r in s.execute(select(Outbox)).scalars())
        raise AssertionError(f"not settled: {len(traffic.posts)} posted, messages {dict(states)}, outbox {dict(out)}")
    n = -1
    while n != len(sends(system)):
        n = len(sends(system))
        time.sleep(1.5)
    return read(gw)


def check_delivery(system, traffic: Traffic, extra_ok=lambda send: False) -> tuple[Ledger, list[dict]]:
    """The promises after recovery: each post stored once and answered; each reply row sent once,
    the provider's record and the outbox matching one to one (same id, same person, same text);
    per message: an answer (seq < 1000) and at most one safe reply (seq >= 1000), and no text twice.
    Provider sends that match no row are returned when ``extra_ok`` accepts them (the caller
    asserts on them) and fail the test otherwise."""
    gw = system.gw
    ledger = read(gw)
    assert len(ledger.messages) == len(traffic.posts)
    for p in traffic.posts:
        m = ledger.message(p)                                      # stored (KeyError: lost)
        assert m.state == "answered", (p.person.channel, m.state)
    ids = Counter(r.provider_msg_id for r in ledger.rows)
    assert all(r.state in ("sent", "delivered") and r.provider_msg_id for r in ledger.rows), \
        Counter((r.state, r.error_code) for r in ledger.rows)
    assert all(n == 1 for n in ids.values()), "two rows with one provider id"

    extras = []
    for person in traffic.people():
        rows = ledger.rows_of(person)
        got = sends(system, person)
        by_id = {s["id"]: s for s in got}
        assert len(by_id) == len(got), "the provider gave one id twice"
        for r in rows:
            s = by_id.get(r.provider_msg_id)
            assert s is not None, f"row {r.id} recorded as sent with an id the provider never gave"
            assert s["text"] == gw.vault.open(bytes(r.body_enc)), f"row {r.id}: another text went out"
        recorded = {r.provider_msg_id for r in rows}
        for s in got:
            if s["id"] not in recorded:
                assert extra_ok(s), \
                    f"{person.channel}: a send that matches no outbox row (sent twice?): {s['text'][:60]!r}"
                extras.append(s)

    safe = {ch: safe_texts(gw, ch) for ch in ("sms", "telegram")}
    for p in traffic.posts:
        m = ledger.message(p)
        rows = ledger.by_message.get(m.id, [])
        answer = [r for r in rows if r.seq < DEGRADED_SEQ]
        notice = [gw.vault.open(bytes(r.body_enc)) for r in rows if r.seq >= DEGRADED_SEQ]
        # (a replayed danger message's answer may be only the numbers its safe reply already gave)
        assert answer or (notice and m.risk in URGENT), f"{p.person.channel} message {m.id}: no answer"
        if notice:
            assert set(notice) <= safe[p.person.channel], "a gateway notice that is not a safe reply"
            assert m.attempts >= 2, "a safe reply for a message that was never deferred"
        texts = [gw.vault.open(bytes(r.body_enc)) for r in rows]
        assert len(texts) == len(set(texts)), f"message {m.id}: the same text sent twice: {texts}"
    return ledger, extras


def check_danger(system, traffic: Traffic, ledger: Ledger, at_once: bool = True) -> list[float]:
    """Each danger message: risk recorded, an open imminent case from the gateway's own rules, and
    the emergency numbers delivered (within AT_ONCE seconds of the message with ``at_once``).
    Returns how long each waited for the numbers."""
    gw = system.gw
    waited = []
    danger = traffic.danger()
    assert danger, "the test sent no danger message"
    for p in danger:
        m = ledger.message(p)
        assert m.risk == "imminent"
        cases = [c for c in ledger.cases if c.conversation_id == m.conversation_id]
        assert any(c.source == "rules" and c.risk == "imminent" and c.status == "open" for c in cases), \
            [(c.source, c.risk, c.status) for c in cases]
        numbers = rendered(gw, p.person.channel, replies.EMERGENCY)
        got = [s for s in sends(system, p.person) if s["at"] >= p.at and s["text"] in numbers]
        assert got, f"{p.person.channel}: the emergency numbers never reached the person"
        assert all(n in " ".join(numbers) for n in NUMBERS)
        waited.append(round(got[0]["at"] - p.at, 1))
        if at_once:
            assert got[0]["at"] - p.at <= AT_ONCE, f"the emergency numbers took {got[0]['at'] - p.at:.1f}s"
    return waited


def case_for(gw, p: Post):
    with transaction(gw.Session) as s:
        m = s.execute(select(Message).where(Message.channel == p.person.channel,
                                            Message.provider_msg_id == p.pid)).scalar_one_or_none()
        if m is None:
            return None
        return s.execute(select(Case).where(Case.conversation_id == m.conversation_id, Case.risk == "imminent",
                                            Case.source == "rules")).scalar_one_or_none()


def no_more_sends(system, seconds: float = 3.0) -> None:
    """After recovery the worker keeps sweeping: nothing more may go out."""
    n = len(sends(system))
    time.sleep(seconds)
    assert len(sends(system)) == n, "replies went out again after everything was settled"


def check_logs(traffic: Traffic, *logs: str) -> None:
    """No message text, phone number or chat id in the logs."""
    text = "\n".join(logs)
    leaks = set()
    for p in traffic.posts:
        for variant in {p.text, strip_diacritics(p.text)}:
            if variant in text:
                leaks.add(f"the text of a {p.person.channel} message")
        address = p.person.address
        for variant in {address, address.lstrip("+"), address[-9:]}:
            if variant in text:
                leaks.add(f"a {p.person.channel} address")
    assert not leaks, sorted(leaks)


def check_after(system, traffic: Traffic, *gateway_logs: str) -> None:
    """The end of every fault test: nothing more goes out, and no log of any process (the
    gateway's and worker's given, Rasa's and the action server's) holds a text or an address."""
    no_more_sends(system)
    check_logs(traffic, *gateway_logs, system.log("rasa.log"), system.log("actions.log"))


def mix(persons: list[Person], texts: list[str], offset: int = 0) -> list[tuple[Person, str]]:
    return [(p, texts[(i + offset) % len(texts)]) for i, p in enumerate(persons)]


# --- 1. Rasa killed ------------------------------------------------------------------------------

def test_rasa_killed_mid_traffic_safe_replies_danger_queued_then_replayed_once(rig, caplog):
    caplog.set_level(logging.INFO)
    system = rig.system
    gw = rig.gateway()
    rig.worker_thread()
    sms, tg = people("sms", 3, 101), people("telegram", 5, 101)
    everyone = sms + tg
    traffic = Traffic(system)

    # everyone writes at once; Rasa is SIGKILLed as soon as the first replies are out, with the
    # rest in flight
    first = mix(everyone, QUESTIONS)
    first[0] = (sms[0], DANGER_UNACCENTED)
    traffic.burst(first, spread=0.5)
    wait_until(lambda: len(sends(system)) >= 2, 60, "the first replies", interval=0.02)
    killed = time.monotonic()
    rig.kill_rasa()

    # more messages while Rasa is down, a danger one among them
    later = mix(everyone, QUESTIONS, 3) + mix(everyone[::2], QUESTIONS, 5)
    later[4] = (tg[1], DANGER)
    traffic.burst(later, spread=3.0)
    traffic.join()

    # still down: everyone who wrote since the kill has had a safe reply at once, the danger
    # messages the emergency numbers, and their cases are in the queue
    assert system.rasa.poll() is not None
    for person in everyone:
        mine = [p for p in traffic.posts if p.person == person and p.at >= killed]
        safe = safe_texts(gw, person.channel)
        for p in mine:
            wait_until(lambda: [s for s in sends(system, person)
                                if s["text"] in safe and killed <= s["at"] <= p.at + AT_ONCE],
                       AT_ONCE + 5, f"a safe reply for a {person.channel} message while Rasa is down")
    for p in traffic.danger():
        numbers = rendered(gw, p.person.channel, replies.EMERGENCY)
        wait_until(lambda: [s for s in sends(system, p.person) if s["text"] in numbers and s["at"] >= p.at],
                   AT_ONCE, "the emergency numbers")
        assert wait_until(lambda: case_for(gw, p), 5, "the danger case"), "no case"
    assert system.rasa.poll() is not None, "Rasa came back by itself?"

    rig.restart_rasa()
    wait_settled(system, traffic, timeout=180)
    ledger, _ = check_delivery(system, traffic)
    check_danger(system, traffic, ledger)
    # the fault hit the traffic: answers before the kill, messages deferred and replayed after it
    attempts = Counter(m.attempts for m in ledger.messages.values())
    assert attempts[1] >= 1, attempts
    assert attempts[2] >= len(later), attempts
    check_after(system, traffic, caplog.text)


# --- 2. the action server killed ---------------------------------------------------------------

def test_action_server_killed_mid_traffic_every_message_answered_once(rig, caplog):
    caplog.set_level(logging.INFO)
    system = rig.system
    gw = rig.gateway()
    rig.worker_thread()
    sms, tg = people("sms", 3, 102), people("telegram", 5, 102)
    everyone = sms + tg
    traffic = Traffic(system)
    texts = ACTION_QUESTIONS + QUESTIONS

    traffic.burst(mix(everyone, texts), spread=0.5)
    wait_until(lambda: len(sends(system)) >= 2, 60, "the first replies", interval=0.02)
    killed, killed_wall = time.monotonic(), time.time()
    rig.kill_actions()
    during = mix(everyone, texts, 1) + mix(everyone, ACTION_QUESTIONS, 0)
    during[2] = (sms[2], DANGER_UNACCENTED)
    during[5] = (tg[2], DANGER)
    traffic.burst(during, spread=3.0)
    traffic.join()
    down = {p.pid for p in traffic.posts if p.at >= killed}
    # while it is down nobody waits in silence: every message is answered, or waits and its
    # conversation got the notice since the kill (one notice per conversation, as when Rasa is down)
    wait_until(lambda: all(_heard(gw, p, killed_wall) for p in traffic.posts), 60, "a reply to everyone",
               interval=0.5)
    with transaction(gw.Session) as s:
        waiting = {m.provider_msg_id for m in s.execute(select(Message).where(Message.state == "deferred")).scalars()}
    assert waiting, "no custom action failed: the fault did not hit the traffic"

    rig.restart_actions()
    after = mix(everyone, ACTION_QUESTIONS, 1)
    traffic.burst(after, spread=1.0)
    traffic.join()
    ledger = wait_settled(system, traffic, timeout=90)
    ledger, _ = check_delivery(system, traffic)
    check_danger(system, traffic, ledger)

    degraded = {ch: rendered(gw, ch, replies.DEGRADED) for ch in ("sms", "telegram")}

    def answer(p: Post) -> list[str]:
        return [gw.vault.open(bytes(r.body_enc)) for r in ledger.by_message[ledger.message(p).id]]

    # With the action server down Rasa still answers, but a question only a custom action answers
    # gets nothing from it: the person gets the gateway's notice at once (it says a reply follows)
    # and the message waits; once the action server is back the replay answers it, once.
    fell_back = [p for p in traffic.posts if p.pid in down and ledger.message(p).attempts > 1]
    assert fell_back and any(p.text in ACTION_QUESTIONS for p in fell_back)
    for p in fell_back:   # the notice went to the person at once (above: one per conversation)
        assert [t for t in answer(p) if t not in degraded[p.person.channel]]   # and the answer, after
    # the emergency numbers are a plain response: they went out while the action server was down
    for p in traffic.danger():
        assert rendered(gw, p.person.channel, replies.EMERGENCY)[0] in answer(p)
    # back: the custom actions answer again
    back = [p for p in traffic.posts if p.text in ACTION_QUESTIONS and p.pid not in down and p.at > killed]
    assert back and all(answer(p) != degraded[p.person.channel] for p in back)
    check_after(system, traffic, caplog.text)


def _heard(gw, p: "Post", since: float) -> bool:
    sent = Outbox.state.in_(["sent", "delivered"])
    with transaction(gw.Session) as s:
        m = s.execute(select(Message).where(Message.channel == p.person.channel,
                                            Message.provider_msg_id == p.pid)).scalar_one_or_none()
        if m is None:
            return False
        if m.state == "answered":
            mine = Outbox.source_message_id == m.id
        else:
            mine = (Outbox.conversation_id == m.conversation_id) & (Outbox.seq >= DEGRADED_SEQ) & \
                (Outbox.created_at >= since)
        return s.execute(select(Outbox.id).where(mine, sent).limit(1)).first() is not None


# --- 3. the worker killed ----------------------------------------------------------------------

def test_worker_killed_while_it_has_work_nothing_lost_nothing_twice(rig, caplog):
    """The gateway only stores (its dispatcher is off): the ``helpline worker`` process answers
    and sends everything, and is SIGKILLed halfway through."""
    caplog.set_level(logging.INFO)
    system = rig.system
    gw = rig.gateway(run_dispatcher=False)
    worker = rig.worker_process()
    sms, tg = people("sms", 3, 103), people("telegram", 5, 103)
    everyone = sms + tg
    traffic = Traffic(system)
    burst = mix(everyone, QUESTIONS) + mix(everyone, QUESTIONS, 2) + mix(everyone, QUESTIONS, 4)
    burst[1] = (sms[1], DANGER_UNACCENTED)
    # sends take a moment, so the kill is likely to find one in flight (a row "sending")
    system.twilio.delay = system.telegram.delay = 0.1
    traffic.burst(burst, spread=2.0)
    traffic.join()
    wait_until(lambda: len(sends(system)) >= 3, 90, "the worker's first replies", interval=0.02)
    rig.kill(worker)
    system.twilio.delay = system.telegram.delay = 0.0
    time.sleep(0.5)                     # a send the provider was taking when the worker died lands
    sent_at_kill = len(sends(system))
    with transaction(gw.Session) as s:
        in_flight = [(r.id, r.channel, r.contact_id, gw.vault.open(bytes(r.body_enc)))
                     for r in s.execute(select(Outbox).where(Outbox.state == "sending")).scalars()]
        states = Counter(m.state for m in s.execute(select(Message)).scalars())
    assert states.get("pending", 0) >= 1, f"the worker had finished before the kill: {states}"

    # while no worker runs, more people write, one in danger: stored, waiting
    more = mix(tg[:3], QUESTIONS, 6)
    more[1] = (tg[1], DANGER)
    traffic.burst(more, spread=0.5)
    traffic.join()
    time.sleep(1.0)
    assert len(sends(system)) == sent_at_kill, "something sent replies while the worker was dead"

    rig.worker_process()
    # leases and send claims of the dead worker expire after 60 s (pipeline.LEASE_SECONDS,
    # SEND_CLAIM_SECONDS)
    ledger = wait_settled(system, traffic, timeout=180)
    # docs/gateway.md: sending is at-least-once when a process dies between the provider's
    # acceptance and the row's "sent": only a row that was "sending" at the kill may go out twice
    in_flight_keys = Counter((ch, ledger.address[cid], text) for _, ch, cid, text in in_flight)
    ledger, extras = check_delivery(system, traffic,
                                    extra_ok=lambda s: in_flight_keys[(s["channel"], s["to"], s["text"])] > 0)
    assert all(n <= in_flight_keys[k] for k, n in Counter((s["channel"], s["to"], s["text"]) for s in extras).items())
    check_danger(system, traffic, ledger, at_once=False)
    check_after(system, traffic, caplog.text, *(p.read_text(errors="replace") for p in rig.worker_logs))
    print(f"worker kill: {sent_at_kill} sent before, {len(in_flight)} rows in flight, {len(extras)} sent twice "
          f"(documented at-least-once)")


# --- 4. the PostgreSQL connections cut ---------------------------------------------------------

def test_postgresql_connections_cut_mid_traffic(pg, rig, caplog):
    caplog.set_level(logging.INFO)
    system = rig.system
    gw = rig.gateway(pg.url)
    rig.worker_thread()
    assert pg.cut() >= 1                # the gateway's connections are the ones we find
    sms, tg = people("sms", 3, 104), people("telegram", 5, 104)
    everyone = sms + tg
    traffic = Traffic(system)
    burst = mix(everyone, QUESTIONS) + mix(everyone, QUESTIONS, 3) + mix(everyone, QUESTIONS, 6)
    burst[2] = (sms[2], DANGER_UNACCENTED)
    burst[12] = (tg[1], DANGER)

    cuts, stop = [], threading.Event()

    def cutter():
        while not stop.is_set():
            cuts.append(pg.cut())
            time.sleep(0.05)

    t = threading.Thread(target=cutter, daemon=True)
    t.start()
    try:
        traffic.burst(burst, spread=6.0)
        traffic.join()
        time.sleep(1.0)
    finally:
        stop.set()
        t.join(10)
    assert sum(cuts) >= 10, f"only {sum(cuts)} connections were cut"

    cut_ended = time.monotonic()
    ledger = wait_settled(system, traffic, timeout=180)
    recovered = time.monotonic() - cut_ended
    spooled = sum("store_failed" in r.getMessage() for r in caplog.records)
    safe = {ch: safe_texts(gw, ch) for ch in ("sms", "telegram")}
    ledger, extras = check_delivery(system, traffic, extra_ok=lambda s: s["text"] in safe[s["channel"]])
    # the only sends outside the outbox: the safe replies of spooled messages (one reply each,
    # an SMS reply may be several parts)
    replies_out = len([s for s in extras if s["text"] in {rendered(gw, s["channel"], n)[0] for n in SAFE_REPLIES}])
    assert replies_out <= spooled, (replies_out, spooled)
    waited = check_danger(system, traffic, ledger)
    check_after(system, traffic, caplog.text)
    failures = Counter(r.getMessage().split(" ")[0] for r in caplog.records if r.levelno >= logging.WARNING)
    print(f"postgresql: {sum(cuts)} connections cut, {spooled} messages spooled, recovered in {recovered:.0f}s, "
          f"emergency numbers after {waited}s, failures logged: {dict(failures)}")


def test_a_database_error_right_after_a_send_does_not_leave_it_to_go_out_again(rig, monkeypatch):
    """The deterministic case behind the cut connections above: the provider took the replies and
    the database fails as they are recorded. Left "sending", they would go out a second time when
    their claim expires (60 s); the recording is retried instead."""
    import contextlib

    from sqlalchemy.exc import OperationalError

    from webhook import sql as Q

    system = rig.system
    gw = rig.gateway()
    failures = [1, 1]                   # the first two recordings fail

    class Flaky:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, statement, *args, **kw):
            if statement is Q.MARK_SENT and failures:
                failures.pop()
                raise OperationalError("UPDATE outbox ...", {}, Exception("server closed the connection"))
            return self.conn.execute(statement, *args, **kw)

    real_tx = gw.tx

    @contextlib.contextmanager
    def flaky_tx():
        with real_tx() as conn:
            yield Flaky(conn)

    monkeypatch.setattr(gw, "tx", flaky_tx)
    traffic = Traffic(system)
    traffic.burst([(people("sms", 1, 108)[0], QUESTIONS[0]), (people("telegram", 1, 108)[0], DANGER)], spread=0.2)
    traffic.join()
    # no worker runs: what is not recorded now stays "sending"
    ledger = wait_settled(system, traffic, timeout=30)
    assert not failures
    check_delivery(system, traffic)
    assert all(r.attempts == 1 for r in ledger.rows)


# --- 5. a provider answering 500 or timing out --------------------------------------------------

def test_provider_500s_are_retried_with_backoff_and_delivered_once(rig, caplog):
    caplog.set_level(logging.INFO)
    system = rig.system
    gw = rig.gateway()
    rig.worker_thread()
    sms, tg = people("sms", 3, 105), people("telegram", 3, 105)
    everyone = sms + tg
    system.twilio.fail_next(5, 500)
    system.telegram.fail_next(5, 500)
    traffic = Traffic(system)
    burst = mix(everyone, QUESTIONS) + mix(everyone, QUESTIONS, 4)
    burst[0] = (sms[0], DANGER_UNACCENTED)
    burst[4] = (tg[1], DANGER)
    traffic.burst(burst, spread=2.0)
    traffic.join()
    # the queue does not wait for the provider
    for p in traffic.danger():
        assert wait_until(lambda: case_for(gw, p), AT_ONCE, "the danger case")

    ledger = wait_settled(system, traffic, timeout=120)
    ledger, _ = check_delivery(system, traffic)
    check_danger(system, traffic, ledger, at_once=False)
    for channel in ("sms", "telegram"):
        calls = send_calls(system, channel)
        rows = [r for r in ledger.rows if r.channel == channel]
        # every provider call is one attempt of one row: the 5 failures were retried, nothing else
        assert len(calls) == sum(r.attempts for r in rows) == len(rows) + 5, (len(calls), len(rows))
        # with backoff: 2 s after a first failure, 4 s after a second (pipeline.backoff)
        texts = Counter((r.channel, ledger.address[r.contact_id], gw.vault.open(bytes(r.body_enc))) for r in rows)
        for r in rows:
            key = (ledger.address[r.contact_id], gw.vault.open(bytes(r.body_enc)))
            if r.attempts < 2 or texts[(channel, *key)] > 1:
                continue
            times = sorted(at for to, text, at in calls if (to, text) == key)
            assert len(times) == r.attempts
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert all(g >= min(300.0, 2.0 ** (i + 1)) - 0.2 for i, g in enumerate(gaps)), gaps
    check_after(system, traffic, caplog.text)


def test_provider_timeouts_are_retried_and_delivered(rig, caplog):
    """Two timeouts per provider: one where the provider never took the message (it must then
    arrive exactly once) and one where it did, only too late for the client (ambiguous: the
    gateway cannot know without asking: Twilio is asked, Telegram cannot be, so a Telegram reply is
    allowed a second copy; docs/gateway.md)."""
    caplog.set_level(logging.INFO)
    system = rig.system
    gw = rig.gateway()
    rig.worker_thread()
    sms, tg = people("sms", 2, 106), people("telegram", 2, 106)
    # the clients give up after 10 s (TwilioHttpClient(timeout=10), HTTPXRequest(read_timeout=10))
    system.twilio.slow_next(1, 12.0, deliver=False)
    system.telegram.slow_next(1, 12.0, deliver=False)
    traffic = Traffic(system)
    traffic.burst([(sms[0], QUESTIONS[0]), (tg[0], DANGER)], spread=0.2)
    traffic.join()
    wait_until(lambda: system.twilio.slow_calls and system.telegram.slow_calls, 30, "the timed-out calls")
    ledger = wait_settled(system, traffic, timeout=90)
    ledger, _ = check_delivery(system, traffic)
    check_danger(system, traffic, ledger, at_once=False)
    timed_out = [r for r in ledger.rows if r.attempts >= 2]
    assert {r.channel for r in timed_out} == {"sms", "telegram"}

    # the provider takes the message but answers after the client gave up
    system.twilio.slow_next(1, 12.0, deliver=True)
    system.telegram.slow_next(1, 12.0, deliver=True)
    traffic.burst([(sms[1], QUESTIONS[1]), (tg[1], QUESTIONS[2])], spread=0.2)
    traffic.join()
    wait_until(lambda: system.twilio.slow_calls == 2 and system.telegram.slow_calls == 2, 30, "the slow calls")
    ledger = wait_settled(system, traffic, timeout=90)
    copies = Counter((s["channel"], s["to"], s["text"]) for s in sends(system))
    ledger, extras = check_delivery(system, traffic,
                                    extra_ok=lambda s: copies[(s["channel"], s["to"], s["text"])] == 2)
    # at least once: the slow ones arrived. Telegram cannot be asked: at most one extra copy.
    # Twilio is asked (pipeline.reconcile_sending): the SMS was recorded as sent, not sent again.
    assert len(extras) <= 1 and all(s["channel"] == "telegram" for s in extras)
    retried = sorted((r.channel, r.attempts) for r in ledger.rows if r.attempts > 1)
    assert retried == [("sms", 2), ("telegram", 2), ("telegram", 2)]
    check_after(system, traffic, caplog.text)
    print(f"ambiguous timeouts: {len(extras)} extra copies at the providers "
          f"({sorted(s['channel'] for s in extras)})")


def test_an_sms_timeout_that_reached_twilio_is_not_sent_twice(rig):
    """The send times out after Twilio took the message: the row stays "sending", the sweep asks
    Twilio (pipeline.reconcile_sending) and records it as sent instead of sending it again."""
    system = rig.system
    rig.gateway()
    rig.worker_thread()
    person = people("sms", 1, 107)[0]
    system.twilio.slow_next(1, 12.0, deliver=True)
    traffic = Traffic(system)
    traffic.burst([(person, QUESTIONS[3])], spread=0.1)
    traffic.join()
    wait_until(lambda: system.twilio.slow_calls == 1, 30, "the slow call")
    wait_settled(system, traffic, timeout=90)
    time.sleep(3)
    texts = Counter(s["text"] for s in sends(system, person))
    assert texts and max(texts.values()) == 1, texts
