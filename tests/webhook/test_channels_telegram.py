"""Telegram through python-telegram-bot 22: secret token, recorded updates, update_id
de-duplication, replies from PTB's Bot on one long-lived loop to the fake Bot API."""
import json

import pytest

from tests.conftest import ROOT
from tests.webhook.conftest import count, post_telegram, rows, settle
from webhook.models import Contact, Message, Outbox

CASES = json.loads((ROOT / "tests" / "fixtures" / "telegram_payloads.json").read_text("utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_recorded_updates(client, gw, fakes, case):
    resp = post_telegram(client, case["update"])
    if isinstance(case["expect"], int):
        assert resp.status_code == case["expect"]
        assert count(gw, Message) == 0
        return
    assert resp.status_code == 200
    settle(gw)
    msgs = rows(gw, Message)
    if case["expect"] == "event":
        assert msgs == [] and fakes["telegram"].sent == []     # groups and receipts: no reply
        return
    assert [m.kind for m in msgs] == [case["expect"]]
    sent = fakes["telegram"].wait_for(1)
    assert sent[0]["chat_id"] == case["update"]["message"]["chat"]["id"]


@pytest.mark.parametrize("secret", [None, "", "tg-secret_12", "TG-SECRET_123"])
def test_wrong_or_missing_secret_is_403(client, gw, fakes, secret):
    update = fakes["telegram"].make_update(1, 5551, "xin chao")
    assert post_telegram(client, update, secret=secret).status_code == 403
    assert count(gw, Message) == 0


def test_not_json_is_400(client, gw):
    resp = client.post("/webhooks/telegram", data=b"\xff\xfe not json",
                       headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret_123"})
    assert resp.status_code == 400 and "JSON" in resp.get_json()["error"]


def test_update_id_de_duplicates_and_two_messages_use_one_loop(client, gw, fakes):
    tg = fakes["telegram"]
    first = tg.make_update(900000001, 5552, "xin chao")
    for _ in range(2):
        assert post_telegram(client, first).status_code == 200
    settle(gw)
    assert post_telegram(client, tg.make_update(900000002, 5552, "cam on")).status_code == 200
    settle(gw)
    sent = tg.wait_for(2)
    assert [s["text"] for s in sent] == ["bot: xin chao", "bot: cam on"]
    assert count(gw, Message) == 2
    # the Bot was initialised once (one getMe) and kept its loop for the second send
    assert len(tg.calls_to("/getMe")) == 1


def test_blocked_bot_stops_the_contact_and_writing_again_lifts_it(client, gw, fakes):
    tg = fakes["telegram"]
    tg.blocked.add(5553)
    post_telegram(client, tg.make_update(900000010, 5553, "xin chao"))
    settle(gw)
    contact = rows(gw, Contact)[0]
    assert (contact.status, contact.stopped_reason) == ("stopped", "telegram_blocked")
    assert rows(gw, Outbox)[0].state == "undeliverable"
    tg.blocked.discard(5553)
    post_telegram(client, tg.make_update(900000011, 5553, "minh quay lai"))
    settle(gw)
    assert rows(gw, Contact)[0].status == "active"
    assert tg.wait_for(1)[0]["text"] == "bot: minh quay lai"


def test_rate_limited_send_is_retried_later(client, gw, fakes):
    tg = fakes["telegram"]
    tg.fail_next(1, status=429)
    post_telegram(client, tg.make_update(900000020, 5554, "xin chao"))
    settle(gw)
    row = rows(gw, Outbox)[0]
    assert row.state == "queued" and row.error_code == "retry_after"


def test_telegram_webhook_command_registers_the_public_url_with_the_secret(fakes, monkeypatch):
    from bot.cli import main

    tg = fakes["telegram"]
    for k, v in {"TELEGRAM_TOKEN": tg.token, "TELEGRAM_SECRET_TOKEN": "tg-secret_123",
                 "TELEGRAM_API_BASE": tg.url + "/bot", "HELPLINE_PUBLIC_URL": "https://helpline.example.org",
                 "HELPLINE_SECRET_KEY": "k" * 40}.items():
        monkeypatch.setenv(k, v)
    assert main(["telegram-webhook"]) == 0
    assert tg.webhook["url"] == "https://helpline.example.org/webhooks/telegram"
    assert tg.webhook["secret_token"] == "tg-secret_123"
