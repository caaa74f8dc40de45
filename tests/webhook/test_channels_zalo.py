"""Zalo OA: the documented signature, recorded events, token refresh with a rotating refresh
token stored in the database, and the 48 h / 8-reply window."""
import json
import time

import pytest
from sqlalchemy import update

from tests.conftest import ROOT
from tests.webhook.conftest import count, post_zalo, rows, settle
from webhook.channels.zalo import signature, within_window
from webhook.db import transaction
from webhook.models import Case, Contact, Message, Outbox, ProviderToken

CASES = json.loads((ROOT / "tests" / "fixtures" / "zalo_payloads.json").read_text("utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_recorded_events(client, gw, fakes, case):
    resp = post_zalo(client, fakes, case["event"])
    if isinstance(case["expect"], int):
        assert resp.status_code == case["expect"]
        assert count(gw, Message) == 0
        return
    assert resp.status_code == 200
    settle(gw)
    msgs = rows(gw, Message)
    if case["expect"] == "event":
        assert msgs == [] and fakes["zalo"].sent == []
        return
    assert [m.kind for m in msgs] == [case["expect"]]
    assert fakes["zalo"].wait_for(1)[0]["user_id"] == case["event"]["sender"]["id"]


def test_signature_formula_matches_the_documented_one(fakes):
    za = fakes["zalo"]
    raw = b'{"event_name":"user_send_text","timestamp":"1764300000000"}'
    assert signature(za.app_id, raw, "1764300000000", za.oa_secret_key) == za.sign(raw, "1764300000000")


def test_tampered_or_unsigned_event_is_403(client, gw, fakes):
    event = fakes["zalo"].make_event("user_send_text", "2512523625412599", "xin chao")
    assert post_zalo(client, fakes, event, tamper=True).status_code == 403
    resp = client.post("/webhooks/zalo", data=json.dumps(event), content_type="application/json")
    assert resp.status_code == 403
    assert count(gw, Message) == 0


def test_duplicate_msg_id_is_processed_once(client, gw, fakes):
    event = fakes["zalo"].make_event("user_send_text", "2512523625412598", "xin chao", msg_id="dup-1")
    for _ in range(3):
        assert post_zalo(client, fakes, event).status_code == 200
    settle(gw)
    assert count(gw, Message) == 1 and len(fakes["zalo"].sent) == 1


def test_expired_token_is_refreshed_and_the_rotated_refresh_token_is_stored(client, gw, fakes):
    za = fakes["zalo"]
    first_refresh = za.refresh_token
    za.expire_access_token()
    post_zalo(client, fakes, za.make_event("user_send_text", "2512523625412597", "xin chao"))
    settle(gw)
    assert za.wait_for(1) and za.refresh_count == 1
    with transaction(gw.Session) as s:
        row = s.get(ProviderToken, "zalo")
        stored_access, stored_refresh = gw.vault.open(row.access_token_enc), gw.vault.open(row.refresh_token_enc)
    assert stored_refresh == za.refresh_token != first_refresh
    assert stored_access == za.access_token
    assert first_refresh.encode() not in row.refresh_token_enc      # sealed at rest
    # the next refresh uses the rotated token, not the configured (now dead) one
    za.expire_access_token()
    post_zalo(client, fakes, za.make_event("user_send_text", "2512523625412597", "cam on"))
    settle(gw)
    assert len(za.wait_for(2)) == 2 and za.refresh_count == 2


def test_reply_outside_the_48h_window_is_flagged_not_dropped(client, gw, fakes):
    za = fakes["zalo"]
    post_zalo(client, fakes, za.make_event("user_send_text", "2512523625412596", "xin chao"))
    settle(gw)
    assert len(za.wait_for(1)) == 1
    row = rows(gw, Outbox)[0]
    with transaction(gw.Session) as s:      # two days pass; a counsellor-side reply is queued
        s.execute(update(Contact).values(last_inbound_at=time.time() - 49 * 3600))
        s.add(Outbox(conversation_id=row.conversation_id, contact_id=row.contact_id, channel="zalo", seq=0,
                     kind="counsellor", body_enc=gw.vault.seal("Chao ban"), state="queued"))
    from webhook.dispatcher import Worker
    Worker(gw).run_once()
    late = rows(gw, Outbox)[-1]
    assert late.state == "undeliverable" and late.flagged and late.error_code == "zalo_window"
    assert len(za.sent) == 1
    assert [c.source for c in rows(gw, Case)] == ["delivery"]


def test_provider_window_error_is_flagged(client, gw, fakes):
    za = fakes["zalo"]
    za.outside_window.add("2512523625412595")
    post_zalo(client, fakes, za.make_event("user_send_text", "2512523625412595", "xin chao"))
    settle(gw)
    row = rows(gw, Outbox)[0]
    assert row.state == "undeliverable" and row.flagged and row.error_code == "-230"


def test_window_rule():
    now = time.time()
    assert within_window(now - 3600, 0, now)
    assert not within_window(now - 48 * 3600 - 1, 0, now)
    assert within_window(now, 7, now) and not within_window(now, 8, now)
    assert not within_window(None, 0, now)
