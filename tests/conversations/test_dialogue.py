"""Conversations through the whole system, as a person has them in the web chat: the gateway (with
the conversation's context), the real Rasa with the trained model and the real action server.
Each failure named in issue 15, as written and without diacritics. What is asserted is what the
person reads: not the fallback, not the same text twice in a row, one counsellor offer, a child's
reply for a child, English for English, the question answered, danger read in its context."""
from __future__ import annotations

import time

import pytest
import requests
import yaml
from sqlalchemy import select

from bot.paths import DOMAIN
from bot.scoring import plain
from tests.system import System
from webhook.db import transaction
from webhook.models import Case, Conversation

pytestmark = [pytest.mark.model, pytest.mark.slow]

RESPONSES: dict = {}
for _p in DOMAIN.glob("*.yml"):
    RESPONSES.update((yaml.safe_load(_p.read_text("utf-8")) or {}).get("responses") or {})


def said(name: str, lang: str = "vi", who: str | None = None) -> str:
    """A recognisable opening of a response's text (before any marker or placeholder)."""
    for v in RESPONSES[name]:
        conds = {c["name"]: c["value"] for c in v.get("condition") or []}
        if conds.get("language", "vi") == lang and conds.get("who") == who:
            return v["text"].split("[[")[0].split("{")[0][:40]
    raise KeyError(name)


@pytest.fixture(scope="module")
def system(model_path, tmp_path_factory):
    sys_ = System(model_path, tmp_path_factory.mktemp("dialogue"))
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.close()


class Chat:
    """One person in the web chat."""

    def __init__(self, system):
        self.system, self.s = system, requests.Session()
        token = self.s.post(system.gateway_url + "/webchat/api/session", timeout=10).json()["session"]
        self.h = {"X-Webchat-Session": token}
        self.seen, self.n, self.replies = 0, 0, []

    def say(self, text: str, quiet: float = 2.0, timeout: float = 60) -> list[str]:
        self.n += 1
        r = self.s.post(self.system.gateway_url + "/webchat/api/messages", json={"text": text, "client_id": f"c{self.n}"},
                        headers=self.h, timeout=10)
        assert r.status_code == 202, r.text
        got, last_new, deadline = [], time.time(), time.time() + timeout
        while time.time() < deadline and (not got or time.time() - last_new < quiet):
            msgs = self.s.get(self.system.gateway_url + f"/webchat/api/messages?after={self.seen}", headers=self.h,
                              timeout=10).json()["messages"]
            for m in msgs:
                self.seen = max(self.seen, m["id"])
                if m["direction"] == "out":
                    got.append(m["text"])
                    last_new = time.time()
            time.sleep(0.2)
        assert got, f"no reply to {text!r}"
        self.replies.extend(got)
        return got

    def conversation(self):
        with transaction(self.system.gw.Session) as s:
            return s.execute(select(Conversation).order_by(Conversation.id.desc())).scalars().first()


def cases(system, conversation_id):
    with transaction(system.gw.Session) as s:
        return list(s.execute(select(Case).where(Case.conversation_id == conversation_id)).scalars())


def variants(*turns):
    """The conversation as written and without diacritics."""
    return pytest.mark.parametrize("turns", [list(turns), [plain(t) for t in turns]], ids=["written", "unaccented"])


def no_repeats(replies):
    assert all(a != b for a, b in zip(replies, replies[1:])), replies


@variants("chào chị", "có")
def test_yes_to_are_you_safe_is_heard(system, turns):
    chat = Chat(system)
    chat.say(turns[0])
    out = " ".join(chat.say(turns[1]))
    assert said("utter_fallback") not in out and said("utter_safe_yes") in out


@variants("alo", "không")
def test_not_safe_to_text_gets_the_numbers_and_a_counsellor(system, turns):
    chat = Chat(system)
    chat.say(turns[0])
    out = " ".join(chat.say(turns[1]))
    assert "113" in out
    time.sleep(1)
    assert any(c.risk in ("high", "imminent") for c in cases(system, chat.conversation().id))


@variants("e la hs lop 8", "e bi may ban lop ben danh trong nha ve sinh", "e không dám nói với cô giáo")
def test_a_pupil_is_answered_as_a_pupil(system, turns):
    chat = Chat(system)
    first = " ".join(chat.say(turns[0]))
    assert said("utter_empathy_school") not in first          # nothing was said about bullying yet
    assert "111" in first
    second = " ".join(chat.say(turns[1]))
    assert said("utter_empathy_school") in second
    third = " ".join(chat.say(turns[2]))
    assert "UBND" not in third and "lệnh cấm tiếp xúc" not in third      # not the adult reply
    assert said("utter_empathy_school") not in third                     # not the same text again
    offers = [r for r in chat.replies if said("utter_offer_counselor") in r]
    assert len(offers) == 1, chat.replies
    no_repeats(chat.replies)


LETTER = ("Chào chị, em lấy chồng được 6 năm. Chồng em nhậu về là chửi, có lần xô em ngã, tiền lương ổng giữ hết, "
          "em xin tiền mua sữa cho con cũng bị mắng. Em chịu lâu rồi nhưng giờ mệt lắm. "
          "Em có nên ly hôn không, nếu ly hôn thì em có được nuôi con không ạ?")


@variants(LETTER)
def test_a_letter_gets_the_disclosure_reply_and_the_custody_answer(system, turns):
    chat = Chat(system)
    out = " ".join(chat.say(turns[0]))
    assert said("utter_empathy_dv") in out
    assert said("utter_divorce_custody") in out


@variants("toi met moi qua")
def test_tired_is_not_suicidal(system, turns):
    chat = Chat(system)
    out = " ".join(chat.say(turns[0]))
    assert said("utter_self_harm") not in out
    assert not [c for c in cases(system, chat.conversation().id) if c.risk == "imminent"]


def test_english_is_answered_in_english(system):
    chat = Chat(system)
    out = " ".join(chat.say("hello, I need help, my husband hits me"))
    assert said("utter_empathy_dv", "en") in out
    where = " ".join(chat.say("where can I go in Da Nang"))
    assert said("utter_fallback") not in where and said("utter_fallback", "en") not in where


@variants("chồng em hay đánh em, hôm qua còn bóp cổ em", "tối nay ổng về")
def test_he_is_coming_back_tonight_after_a_disclosure_is_danger(system, turns):
    chat = Chat(system)
    chat.say(turns[0])
    out = " ".join(chat.say(turns[1]))
    assert "113" in out and said("utter_fallback") not in out
    assert any(c.risk in ("high", "imminent") for c in cases(system, chat.conversation().id))


LEAVE_THE_ROOM = "Ra khỏi phòng"


@variants("e hoc lop 7", "hom qua ba danh e bam het lung")
def test_a_child_hurt_at_home_gets_steps_for_a_child(system, turns):
    chat = Chat(system)
    chat.say(turns[0])
    out = " ".join(chat.say(turns[1]))
    assert "111" in out and LEAVE_THE_ROOM not in out, out
    assert "người lớn tin cậy" in out
    # the numbers in words for a child, not the adult's "Đang nguy hiểm: gọi ngay 113"
    assert said("utter_emergency_numbers", who="child") in out and said("utter_emergency_numbers") not in out, out


@variants("Con gái tôi 13 tuổi, có người đàn ông lạ trên mạng đòi nó gửi ảnh khỏa thân", "tôi phải báo ở đâu")
def test_a_child_groomed_online_gets_the_online_steps_and_the_next_question_is_not_the_fallback(system, turns):
    chat = Chat(system)
    out = " ".join(chat.say(turns[0]))
    # the online steps or the child's (both fit; neither sends a parent out of the room)
    assert LEAVE_THE_ROOM not in out and ("Giữ lại tin nhắn" in out or "người lớn tin cậy" in out), out
    nxt = " ".join(chat.say(turns[1]))
    assert said("utter_fallback") not in nxt, nxt
    no_repeats(chat.replies)
