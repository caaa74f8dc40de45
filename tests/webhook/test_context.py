"""The conversation's context in the gateway (bot/context.py): kept on the conversation row,
sent to Rasa with every message, updated from what Rasa read and what its replies asked, and used
by the gateway's own rules when Rasa is down."""
from __future__ import annotations

from tests.conftest import said
from tests.webhook.conftest import post_telegram, rows, settle
from tests.webhook.test_pipeline import conversation_of, wait_texts
from webhook import replies
from webhook.models import Case


def test_context_goes_to_rasa_and_comes_back_from_its_replies(client, gw, fakes):
    rasa, tg = fakes["rasa"], fakes["telegram"]
    rasa.custom = [{"asks": "safe_now"}, {"reading": {"intent": "disclose_dv", "topic": "domestic_violence",
                                                       "risk": "medium", "conversation_risk": "medium"}}]
    assert post_telegram(client, tg.make_update(990000001, 7701, "chào chị")).status_code == 200
    settle(gw)
    wait_texts(fakes, "telegram", 7701, 1)
    conv = conversation_of(gw, "telegram", 7701)
    assert (conv.risk, conv.topic, conv.asked) == ("medium", "domestic_violence", "safe_now")
    # the custom payloads are not sent to the person
    assert all("asks" not in t and "reading" not in t for t in [m["text"] for m in tg.sent])

    rasa.custom = [{"reading": {"intent": "thank", "topic": "chitchat", "risk": "none", "conversation_risk": "medium"}}]
    assert post_telegram(client, tg.make_update(990000002, 7701, "cảm ơn")).status_code == 200
    settle(gw)
    wait_texts(fakes, "telegram", 7701, 2)
    assert rasa.calls[-1]["metadata"]["context"] == {"risk": "medium", "topic": "domestic_violence", "asked": "safe_now"}
    conv = conversation_of(gw, "telegram", 7701)
    assert (conv.risk, conv.topic, conv.asked) == ("medium", "domestic_violence", None)   # never lowered


def test_with_rasa_down_not_safe_after_the_safety_question_is_danger(client, gw, fakes):
    rasa, tg = fakes["rasa"], fakes["telegram"]
    rasa.custom = [{"asks": "safe_now"}]
    assert post_telegram(client, tg.make_update(990000011, 7702, "alo")).status_code == 200
    settle(gw)
    wait_texts(fakes, "telegram", 7702, 1)
    rasa.down = True
    assert post_telegram(client, tg.make_update(990000012, 7702, "ko")).status_code == 200
    settle(gw)
    assert wait_texts(fakes, "telegram", 7702, 2)[-1] == said(gw, replies.EMERGENCY)
    conv = conversation_of(gw, "telegram", 7702)
    assert [(c.source, c.risk) for c in rows(gw, Case, Case.conversation_id == conv.id)] == [("rules", "high")]


def test_with_rasa_down_he_is_coming_back_after_a_disclosure_is_danger(client, gw, fakes):
    rasa, tg = fakes["rasa"], fakes["telegram"]
    rasa.custom = [{"reading": {"intent": "disclose_dv", "topic": "domestic_violence", "risk": "medium",
                                "conversation_risk": "medium"}}]
    assert post_telegram(client, tg.make_update(990000021, 7703, "chồng em hay chửi em")).status_code == 200
    settle(gw)
    wait_texts(fakes, "telegram", 7703, 1)
    rasa.down = True
    assert post_telegram(client, tg.make_update(990000022, 7703, "lại bị như hôm trước")).status_code == 200
    settle(gw)
    assert wait_texts(fakes, "telegram", 7703, 2)[-1] == said(gw, replies.EMERGENCY)


def test_a_malformed_reading_or_question_changes_nothing(client, gw, fakes):
    rasa, tg = fakes["rasa"], fakes["telegram"]
    rasa.custom = [{"asks": "anything"}, {"reading": {"risk": "extreme", "topic": 5}}, {"reading": "junk"}]
    assert post_telegram(client, tg.make_update(990000031, 7704, "xin chào")).status_code == 200
    settle(gw)
    wait_texts(fakes, "telegram", 7704, 1)
    conv = conversation_of(gw, "telegram", 7704)
    assert (conv.risk, conv.asked) == ("none", None)
