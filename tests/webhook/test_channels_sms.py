"""SMS through Twilio: signatures by twilio's own validator, the recorded payload table, replies
through the real twilio client to the fake API, unaccented and split at word boundaries."""
import json

import pytest

from tests.conftest import ROOT
from tests.webhook.conftest import PUBLIC, count, post_sms, rows, settle
from webhook.channels.base import split_words
from webhook.channels.sms import is_gsm7
from webhook.models import Case, Contact, Message, Outbox

CASES = json.loads((ROOT / "tests" / "fixtures" / "sms_payloads.json").read_text("utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_recorded_payloads(client, gw, fakes, case):
    resp = post_sms(client, fakes, case["params"])
    if isinstance(case["expect"], int):
        assert resp.status_code == case["expect"]
        assert count(gw, Message) == 0
        return
    assert resp.status_code == 200
    assert resp.mimetype == "text/xml" and b"<Response/>" in resp.data
    settle(gw)
    msgs = rows(gw, Message)
    assert [m.kind for m in msgs] == [case["expect"]]
    sent = fakes["twilio"].wait_for(1)
    assert sent[0]["to"] == case["params"]["From"]
    if case["expect"] == "media":
        assert msgs[0].body_enc is None            # media is never stored
        assert "chu" in sent[0]["body"]            # "chỉ đọc được tin nhắn chữ", unaccented


def test_bad_or_missing_signature_is_403_and_nothing_stored(client, gw, fakes):
    params = fakes["twilio"].inbound_params("+84905000009", "xin chao")
    assert post_sms(client, fakes, params, signature="").status_code == 403
    assert post_sms(client, fakes, params, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    tampered = dict(params)
    good = post_sms.__globals__["RequestValidator"](fakes["twilio"].auth_token).compute_signature(PUBLIC + "/webhooks/sms", params)
    tampered["Body"] = "xin chao!!"
    assert post_sms(client, fakes, tampered, signature=good).status_code == 403
    assert count(gw, Message) == 0 and count(gw, Contact) == 0


def test_signature_uses_the_public_url_not_the_internal_one(client, gw, fakes):
    """Behind a proxy Flask sees http://localhost/...; Twilio signed https://public/...."""
    params = fakes["twilio"].inbound_params("+84905000010", "xin chao")
    from twilio.request_validator import RequestValidator

    internal = RequestValidator(fakes["twilio"].auth_token).compute_signature("http://localhost/webhooks/sms", params)
    assert post_sms(client, fakes, params, signature=internal).status_code == 403
    assert post_sms(client, fakes, params).status_code == 200


def test_duplicate_delivery_is_processed_once(client, gw, fakes):
    params = fakes["twilio"].inbound_params("+84905000011", "cho hoi so tong dai")
    for _ in range(3):
        assert post_sms(client, fakes, params).status_code == 200
    settle(gw)
    assert count(gw, Message) == 1
    assert len(fakes["rasa"].calls) == 1
    assert len(fakes["twilio"].sent) == 1


def test_reply_is_unaccented_split_at_words_and_uses_the_status_callback(client, gw, fakes):
    params = fakes["twilio"].inbound_params("+84905000012", "toi can giup")
    post_sms(client, fakes, params)
    settle(gw)
    sent = fakes["twilio"].wait_for(1)
    assert sent[0]["status_callback"] == PUBLIC + "/webhooks/sms/status"
    assert sent[0]["from_"] == "+15005550006"
    adapter = gw.adapters["sms"]
    long = "Đang nguy hiểm: gọi ngay 113 (công an). Bị thương: 115 (cấp cứu). Trẻ em: 111. " * 4
    parts = adapter.render(long)
    assert all(is_gsm7(p) and len(p) <= 160 for p in parts)
    from bot.nlu.normalize import strip_diacritics
    assert " ".join(parts).split() == strip_diacritics(long).split()      # no word cut, nothing lost
    assert len(parts) == 2


def test_accented_replies_when_configured_use_the_ucs2_limit(make_app):
    app = make_app(sms_unaccented=False)
    parts = app.extensions["helpline"].adapters["sms"].render("Trẻ em gọi 111. " * 10)
    assert all(len(p) <= 70 for p in parts) and "Trẻ" in parts[0]


def test_split_words_never_cuts_a_word_and_never_loses_text():
    text = "a " * 10 + "supercalifragilistic" * 10 + " end"
    parts = split_words(text, 30)
    assert all(len(p) <= 30 for p in parts)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")
    assert split_words("", 10) == [""]


def test_unsubscribed_recipient_21610_stops_the_contact_and_flags(client, gw, fakes):
    fakes["twilio"].unsubscribed.add("+84905000013")
    post_sms(client, fakes, fakes["twilio"].inbound_params("+84905000013", "xin chao"))
    settle(gw)
    contact = rows(gw, Contact)[0]
    assert contact.status == "stopped" and contact.stopped_reason == "sms_21610"
    out = rows(gw, Outbox)
    assert out[0].state == "undeliverable" and out[0].flagged and out[0].error_code == "21610"
    assert [c.source for c in rows(gw, Case)] == ["delivery"]


def test_status_callback_updates_delivery_and_is_signed(client, gw, fakes):
    post_sms(client, fakes, fakes["twilio"].inbound_params("+84905000014", "xin chao"))
    settle(gw)
    sid = rows(gw, Outbox)[0].provider_msg_id
    assert sid and sid.startswith("SM")
    params = fakes["twilio"].status_callback_params(sid, "delivered")
    assert post_sms(client, fakes, params, path="/webhooks/sms/status", signature="x").status_code == 403
    assert post_sms(client, fakes, params, path="/webhooks/sms/status").status_code == 204
    assert rows(gw, Outbox)[0].state == "delivered"


def test_temporary_provider_error_is_retried_with_backoff(client, gw, fakes):
    fakes["twilio"].fail_next(1, status=500)
    post_sms(client, fakes, fakes["twilio"].inbound_params("+84905000015", "xin chao"))
    settle(gw)
    row = rows(gw, Outbox)[0]
    assert row.state == "queued" and row.attempts == 1 and row.next_attempt_at > row.created_at
    from sqlalchemy import update

    from webhook.db import transaction
    with transaction(gw.Session) as s:        # time passes
        s.execute(update(Outbox).values(next_attempt_at=0))
    from webhook.dispatcher import Worker
    assert Worker(gw).run_once()["sent"] == 1
    assert rows(gw, Outbox)[0].state == "sent"
    assert len(fakes["twilio"].sent) == 1
