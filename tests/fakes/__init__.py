"""In-process fake provider APIs (Twilio, Telegram Bot API, Zalo OA) for gateway tests."""

from tests.fakes.providers import Call, FakeProvider, FakeTelegram, FakeTwilio, FakeZalo

__all__ = ["Call", "FakeProvider", "FakeTelegram", "FakeTwilio", "FakeZalo"]
