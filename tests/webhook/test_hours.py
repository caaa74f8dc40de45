"""Working hours: outside them a person whose case opens is told once, after the bot's answer,
which numbers answer now; the case waits in the queue."""
import datetime as dt

import pytest

from tests.conftest import said

from tests.webhook.conftest import post_telegram, rows, settle
from webhook import replies
from webhook.hours import TZ, HoursError, parse, staffed
from webhook.models import Case

SPEC = "mon-fri 07:30-11:30,13:30-17:00; sat 07:30-11:30"


def at(y, mo, d, h, mi):
    return dt.datetime(y, mo, d, h, mi, tzinfo=TZ).timestamp()


@pytest.mark.parametrize("when,expected", [
    (at(2026, 11, 30, 8, 0), True),        # Monday morning
    (at(2026, 11, 30, 12, 0), False),      # lunch
    (at(2026, 11, 30, 16, 59), True),
    (at(2026, 11, 30, 17, 0), False),
    (at(2026, 12, 5, 9, 0), True),         # Saturday morning
    (at(2026, 12, 5, 14, 0), False),       # Saturday afternoon
    (at(2026, 12, 6, 9, 0), False),        # Sunday
    (at(2026, 12, 2, 1, 0), False),        # Wednesday night (18:00 UTC the day before)
])
def test_staffed_hours_in_vietnam_time(when, expected):
    assert staffed(when, SPEC) is expected


def test_holidays_and_around_the_clock():
    national_day = at(2026, 9, 2, 9, 0)    # a Wednesday
    assert staffed(national_day, SPEC) and not staffed(national_day, SPEC, holidays="2026-09-02")
    assert staffed(at(2026, 12, 6, 3, 0), "")


@pytest.mark.parametrize("bad", ["weekdays 8-5", "mon-fri 07:30", "mon 25:00-26:00"])
def test_unreadable_hours_are_refused(bad):
    with pytest.raises(HoursError):
        parse(bad)


def test_out_of_hours_case_gets_one_notice_after_the_bot_answer(make_app, fakes, monkeypatch):
    from webhook import hours
    import webhook.queue as q

    app = make_app(hours=SPEC)
    gw, client, tg = app.extensions["helpline"], app.test_client(), fakes["telegram"]
    monkeypatch.setattr(hours, "staffed", lambda when, spec, holidays="": False)     # a Sunday night
    post_telegram(client, tg.make_update(940000001, 5901, "chong em dang cam dao doi giet em"))
    settle(gw)
    post_telegram(client, tg.make_update(940000002, 5901, "em so lam"))
    settle(gw)
    texts = [m["text"] for m in tg.sent if m["chat_id"] == 5901]
    notice = said(gw, replies.OUT_OF_HOURS)
    assert texts.count(notice) == 1
    assert texts.index(notice) > 0                     # after the bot's first answer
    (case,) = rows(gw, Case)
    assert case.status == "open" and case.notice_at is not None
    assert q.out_of_hours_notice(gw, case.conversation_id) is False        # once per case
    assert [m["text"] for m in tg.sent].count(notice) == 1


def test_in_hours_no_notice(make_app, fakes):
    app = make_app(hours="mon-sun 00:00-24:00")
    gw, client, tg = app.extensions["helpline"], app.test_client(), fakes["telegram"]
    post_telegram(client, tg.make_update(940000011, 5902, "chong em dang cam dao doi giet em"))
    settle(gw)
    assert said(gw, replies.OUT_OF_HOURS) not in [m["text"] for m in tg.sent]
    assert rows(gw, Case)[0].notice_at is None
