"""Privacy at rest (issue 7): encryption keys that can be rotated without losing a message or
changing who a contact is."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from tests.webhook.conftest import rows
from webhook import keys, pipeline
from webhook.channels.base import Inbound
from webhook.models import Contact, Conversation, Message
from webhook.privacy import Vault


def test_a_configured_key_list_encrypts_with_the_first_and_reads_all():
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_old = Vault("s" * 40, [old]).seal("chồng tôi đánh tôi")
    both = Vault("s" * 40, [new, old])
    assert both.open(sealed_old) == "chồng tôi đánh tôi"
    assert Vault("s" * 40, [old]).open(both.seal("x")) is None                # written with the new one
    assert Vault("s" * 40, [new]).pseudonym("sms", "+84905") == Vault("s" * 40).pseudonym("sms", "+84905")
    with pytest.raises(ValueError, match="Fernet"):
        Vault("s" * 40, ["not-a-key"])


def test_rotate_reencrypts_every_sealed_value_and_the_old_key_can_go(make_app, tmp_path, capsys, monkeypatch):
    from bot import cli

    first = make_app(run_dispatcher=False).extensions["helpline"]          # the key derived from the secret
    for i, text in enumerate(["tôi bị đánh", "cứu tôi", "xin chào"]):
        pipeline.receive(first, Inbound("sms", f"+8490555{i:04d}", f"SMr{i}", text=text))
    bodies = sorted(first.vault.open(m.body_enc) for m in rows(first, Message))
    pseudonyms = sorted(c.pseudonym for c in rows(first, Contact))
    new = keys.generate()
    from webhook.privacy import derived_key
    old = derived_key(first.settings.secret_key).decode()
    monkeypatch.setenv("HELPLINE_DATABASE_URL", first.settings.database_url)
    monkeypatch.setenv("HELPLINE_SECRET_KEY", first.settings.secret_key)
    monkeypatch.setenv("HELPLINE_ENCRYPTION_KEYS", f"{new},{old}")
    assert cli.main(["keys", "check"]) == 1                                # old values are not under the new key
    assert cli.main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    assert "messages" in out and "rotated        3" in out and "tôi" not in out
    assert cli.main(["keys", "check"]) == 0
    monkeypatch.setenv("HELPLINE_ENCRYPTION_KEYS", new)                    # the old key removed
    second = make_app(run_dispatcher=False, encryption_keys=new).extensions["helpline"]
    assert sorted(second.vault.open(m.body_enc) for m in rows(second, Message)) == bodies
    assert sorted(second.vault.open(c.address_enc) for c in rows(second, Contact)) == [f"+8490555{i:04d}" for i in range(3)]
    assert sorted(c.pseudonym for c in rows(second, Contact)) == pseudonyms  # the same contacts


# --- XOA ---------------------------------------------------------------------------------------------

def test_xoa_asks_then_erases_texts_address_and_tracker_and_keeps_no_link(client, gw, fakes):
    from tests.webhook.conftest import post_sms, settle
    from webhook.models import CaseNote, Erasure, Outbox, Subscriber
    from webhook.privacy import mask  # noqa: F401

    number = "+84905557777"
    sms = fakes["twilio"]
    for i, text in enumerate(["chồng tôi đánh tôi chảy máu", "DK", "CO", "XÓA"]):
        post_sms(client, fakes, sms.inbound_params(number, text, message_sid=f"SMx{i}"))
        settle(gw)
    asked = sms.wait_for(4)[-1]["body"]
    assert "XOA" in asked and "CO" in asked                                     # the confirmation question
    assert rows(gw, Erasure)[0].state == "asked"
    contact_before = rows(gw, Contact)[0]
    senders = {c.rasa_sender for c in rows(gw, Conversation)}
    post_sms(client, fakes, sms.inbound_params(number, "có", message_sid="SMx9"))
    settle(gw)
    done = sms.wait_for(5)[-1]
    assert done["to"] == number and "113" in done["body"]                      # told first, then erased
    (contact,) = rows(gw, Contact)
    assert contact.address_enc == b"" and contact.pseudonym != contact_before.pseudonym
    assert contact.status == "stopped" and contact.stopped_reason == "erased"
    assert all(m.body_enc is None for m in rows(gw, Message))
    assert all(o.body_enc == b"" for o in rows(gw, Outbox))
    assert all(n.body_enc == b"" for n in rows(gw, CaseNote))
    assert rows(gw, Subscriber)[0].status == "unsubscribed"
    (erasure,) = rows(gw, Erasure)
    assert erasure.state == "done" and "messages=" in erasure.counts
    assert {s for s, _events in fakes["rasa"].replaced} == senders            # Rasa forgot them
    assert all(c.rasa_sender.startswith("erased-") for c in rows(gw, Conversation))   # and the ids changed
    assert all(events == [] for _s, events in fakes["rasa"].replaced)
    # the same number writing again is a new contact, linked to nothing old
    post_sms(client, fakes, sms.inbound_params(number, "xin chào", message_sid="SMx10"))
    settle(gw)
    assert len(rows(gw, Contact)) == 2


def test_xoa_then_something_else_cancels_and_nothing_is_erased(quiet):
    from webhook import erasure
    from webhook.models import Erasure

    conv = pipeline.receive(quiet, Inbound("telegram", "7123", "m1", text="xin chào")).conversation_id
    reply, erase = erasure.intercept(quiet, conv, "xoa du lieu")
    assert not erase and "XOA" in reply
    reply, erase = erasure.intercept(quiet, conv, "không")
    assert not erase and rows(quiet, Erasure)[0].state == "cancelled"
    assert erasure.intercept(quiet, conv, "có") is None                        # no longer an answer to XOA
    assert erasure.intercept(quiet, conv, "xóa giúp tôi tin nhắn của chồng") is None    # a sentence, not XOA
    assert all(m.body_enc is not None for m in rows(quiet, Message))




# --- retention -----------------------------------------------------------------------------------------

def test_retention_blanks_old_texts_and_addresses_and_keeps_what_must_stay(quiet, capsys, monkeypatch):
    """90 days after a case closed (or the last message, without a case) texts are blanked; an
    address is forgotten when the person is gone as long, except for a campaign subscriber; an
    open case and a recent conversation are untouched; statistics stay."""
    import time

    from sqlalchemy import update

    from bot import cli
    from webhook import retention
    from webhook.broadcast import subscribers as SUB
    from webhook.db import transaction
    from webhook.models import Case, Episode, Subscriber

    gw = quiet
    day = 86400
    now = time.time()
    old = now - 120 * day

    def conv(channel, address, text, at):
        c = pipeline.receive(gw, Inbound(channel, address, f"p-{address}-{at}", text=text)).conversation_id
        with transaction(gw.Session) as s:
            s.execute(update(Message).where(Message.conversation_id == c).values(received_at=at))
            s.execute(update(Conversation).where(Conversation.id == c).values(created_at=at, updated_at=at))
            contact_id = s.get(Conversation, c).contact_id
            s.execute(update(Contact).where(Contact.id == contact_id).values(created_at=at, last_inbound_at=at))
        return c

    gone = conv("sms", "+84905000001", "chuyện cũ", old)                         # old, no case
    closed = conv("telegram", "7000002", "ca đã đóng", old)                     # old case closed long ago
    still_open = conv("telegram", "7000003", "ca còn mở", old)                  # old but its case is open
    recent = conv("sms", "+84905000004", "mới hôm qua", now - day)
    subscriber = conv("zalo", "zu5", "DK", old)                                 # asked for campaign messages
    with transaction(gw.Session) as s:
        s.add(Case(conversation_id=closed, status="closed", risk="high", source="rules", created_at=old,
                   updated_at=old + day, resolved_at=old + day))
        s.add(Case(conversation_id=still_open, status="open", risk="high", source="rules", created_at=old,
                   updated_at=old))
    SUB.handle(gw, subscriber, "DK", now=old)
    SUB.handle(gw, subscriber, "có", now=old + 60)
    episodes_before = len(rows(gw, Episode))
    monkeypatch.setenv("HELPLINE_DATABASE_URL", gw.settings.database_url)
    monkeypatch.setenv("HELPLINE_SECRET_KEY", gw.settings.secret_key)
    assert cli.main(["purge", "--dry-run"]) == 0
    assert "would purge: conversations=3" in capsys.readouterr().out          # gone, closed, subscriber's
    assert all(m.body_enc is not None for m in rows(gw, Message))              # a dry run changes nothing
    out = retention.purge(gw, now=now)
    assert out["conversations"] == 3 and out["addresses"] == 2
    texts = {m.conversation_id: m.body_enc for m in rows(gw, Message)}
    assert texts[gone] is None and texts[closed] is None and texts[subscriber] is None
    assert texts[still_open] is not None and texts[recent] is not None
    by_conv = {c.id: c.contact_id for c in rows(gw, Conversation)}
    contacts = {c.id: c for c in rows(gw, Contact)}
    assert contacts[by_conv[gone]].address_enc == b"" and contacts[by_conv[closed]].address_enc == b""
    assert contacts[by_conv[subscriber]].address_enc != b""                     # kept until HUY
    assert contacts[by_conv[still_open]].address_enc != b"" and contacts[by_conv[recent]].address_enc != b""
    assert rows(gw, Subscriber)[0].status == "subscribed"
    assert len(rows(gw, Episode)) == episodes_before                          # statistics stay
    assert retention.purge(gw, now=now) == {"conversations": 0, "messages": 0, "replies": 0, "notes": 0,
                                            "addresses": 0}                   # idempotent


def test_a_supervisor_exports_and_erases_a_persons_data_on_their_request(make_app, fakes, tmp_path):
    import json

    from tests.webhook.test_console import PASSWORD, csrf, login, telegram_case
    from webhook.console.auth import create_staff
    from webhook.models import Erasure, Event

    app = make_app()
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    create_staff(gw, "hoa", PASSWORD, "supervisor")
    create_staff(gw, "lan", PASSWORD, "counsellor")
    case = telegram_case(app, gw, chat_id=5556789, text="chồng tôi đang cầm dao dọa giết tôi")
    lan, hoa = login(app, "lan"), login(app, "hoa")
    assert lan.get(f"/console/cases/{case.id}/person-data.json").status_code in (302, 403)
    r = hoa.get(f"/console/cases/{case.id}/person-data.json")
    data = json.loads(r.get_data(as_text=True))
    assert data["address"] == "5556789" and "dao" in data["conversations"][0]["messages"][0]["text"]
    assert r.headers["Cache-Control"] == "no-store"
    assert lan.post(f"/console/cases/{case.id}/erase", data={"csrf": csrf(lan)}).status_code in (302, 403)
    assert rows(gw, Contact)[0].address_enc != b""                            # a counsellor cannot
    assert hoa.post(f"/console/cases/{case.id}/erase", data={"csrf": csrf(hoa)}).status_code == 302
    assert rows(gw, Contact)[0].address_enc == b"" and all(m.body_enc is None for m in rows(gw, Message))
    (erasure,) = rows(gw, Erasure)
    assert (erasure.method, erasure.actor, erasure.state) == ("staff", "hoa", "done")
    actions = [(e.action, e.actor) for e in rows(gw, Event) if e.action in ("export", "erased")]
    assert ("export", "hoa") in actions and ("erased", "hoa") in actions
    data = json.loads(hoa.get(f"/console/cases/{case.id}/person-data.json").get_data(as_text=True))
    assert data["address"] is None and all(m["text"] in (None, "") for c in data["conversations"]
                                           for m in c["messages"])


def test_a_bad_encryption_key_is_a_clear_configuration_error_that_does_not_echo_it(tmp_path):
    from webhook.settings import ConfigError, Settings, encryption_keys

    good = keys.generate()
    bad = "secret-but-not-a-fernet-key"
    with pytest.raises(ConfigError, match="encryption key 2 of 2") as err:
        encryption_keys(Settings.from_env({"HELPLINE_ENCRYPTION_KEYS": f"{good},{bad}"}))
    assert bad not in str(err.value) and good not in str(err.value)
    key_file = tmp_path / "keys"
    key_file.write_text(f"# current first\n{good}\n")
    assert encryption_keys(Settings.from_env({"HELPLINE_ENCRYPTION_KEY_FILE": str(key_file)})) == [good]
    with pytest.raises(ConfigError, match="cannot be read"):
        encryption_keys(Settings.from_env({"HELPLINE_ENCRYPTION_KEY_FILE": str(tmp_path / "missing")}))
