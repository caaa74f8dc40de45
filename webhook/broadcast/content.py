"""What campaign messages and the subscription replies say, in every language, from the Babel
catalogs in ``locale/`` (the msgid is English; ``locale/vi`` holds the Vietnamese, which is the
text people receive by default). ``pybabel extract`` finds the strings through ``_l``.

Rules every campaign text follows (tests check them in every language):
- a neutral first line, so that a lock-screen preview or someone glancing at the phone sees
  nothing about violence;
- only facts of ``../shared/reference/domain_brief.md`` (§1.10 the action months and the 2019
  Quảng Nam slogans; the hotlines 1800 1581, 111, 113) and no invented number, law or fine;
- the way out on the last line (HUY).
Over SMS the channel sends them without diacritics (``webhook/channels/sms.py``).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Optional

from babel.support import NullTranslations, Translations

from bot.paths import ROOT


def _l(text: str) -> str:
    """Marks a string for ``pybabel extract``; translated when rendered."""
    return text


LANGUAGES = ("vi", "en")

# --- subscription replies ----------------------------------------------------------------------------
# The consent text: shown when someone writes DK, confirmed with CÓ. Changing it means a new
# version (``CONSENT_VERSIONS``; a test fails when the text changes without one).
CONSENT_VERSION = "2026-11-v1"
CONSENT = _l("Hello, you wrote DK.\n"
             "If you agree, you will receive campaign messages against violence from the Social Work Center: "
             "at most 3 a day, only between 07:00 and 22:00 (or the hours you choose: write GIO 19-21). "
             "We keep your contact and this consent, nothing else, until you stop. Write HUY at any time to stop. "
             "To agree, write CO. If you do not answer, nothing will be sent.")
CONSENT_VERSIONS = {"2026-11-v1": "9ae87094d1df"}         # version -> consent_digest() of its text
SUBSCRIBED = _l("Thank you, you will receive campaign messages. Write HUY at any time to stop, "
                "GIO 19-21 to choose your hours, KLL to pause all messages.")
ALREADY = _l("You already receive campaign messages. Write HUY to stop.")
UNSUBSCRIBED = _l("Done: you will not receive campaign messages or reminders from us. You can still write to "
                  "us at any time. In danger: call 113.")
SAFE_HOURS_SET = _l("Saved: we will only send messages between %(start)s:00 and %(end)s:00. Write GIO BAT KY "
                    "to remove this.")
SAFE_HOURS_CLEARED = _l("Saved: messages may come between 07:00 and 22:00.")
PAUSED = _l("Saved: we will not contact you first in any way. You can still write to us. Write LIEN LAC LAI "
            "to allow messages again.")
RESUMED = _l("Saved: messages you asked for may come again.")

# --- campaign messages --------------------------------------------------------------------------------
# key -> (occasion, audience, text). The first line is neutral; the facts are in domain_brief §1.10
# (dates, the 2019 Quảng Nam slogans) and the hotlines of §1 (1800 1581, 111, 113).
MESSAGES = {
    "june_dv_month": ("june_dv_month", "all", _l(
        "Hello, this is the message you signed up for.\n"
        "June is the National Action Month on domestic violence prevention: \"End violence, foster love\". "
        "If you or someone you know needs help, call 1800 1581 (free) or write to us. In danger: 113.\n"
        "Write HUY to stop these messages.")),
    "gbv_action_month": ("gbv_action_month", "all", _l(
        "Hello, this is the message you signed up for.\n"
        "15 November to 15 December is the Action Month for gender equality and the prevention of gender-based "
        "violence. Speak up when there is violence: people will help you. Call 1800 1581 (free), 111 for "
        "children, 113 in danger.\n"
        "Write HUY to stop these messages.")),
    "nov25": ("nov25", "all", _l(
        "Hello, this is the message you signed up for.\n"
        "25 November is the International Day for the Elimination of Violence against Women. Violence is never "
        "your fault. Call 1800 1581 (free) or write to us; in danger, 113.\n"
        "Write HUY to stop these messages.")),
    "students": (None, "student", _l(
        "Hello, this is the message you signed up for.\n"
        "If someone at school hits, bullies or touches you in a way you do not want, it is not your fault. "
        "Call 111 (free, day and night) or write to us.\n"
        "Write HUY to stop these messages.")),
}


@lru_cache(maxsize=8)
def translations(language: str):
    if language == "en":
        return NullTranslations()
    return Translations.load(str(ROOT / "locale"), [language])


def text(msgid: str, language: Optional[str] = "vi", **values) -> str:
    out = translations(language if language in LANGUAGES else "vi").gettext(msgid)
    return out % values if values else out


def message(key: str, language: Optional[str] = "vi") -> str:
    return text(MESSAGES[key][2], language)


def consent_digest() -> str:
    """A fingerprint of the consent text in every language: ``CONSENT_VERSIONS`` must name it,
    so the text cannot change without a new version (the tests check)."""
    return hashlib.sha256("\n".join(text(CONSENT, lang) for lang in LANGUAGES).encode("utf-8")).hexdigest()[:12]


# --- SMS length and cost (domain_brief §5.1) ------------------------------------------------------------

def sms_segments(body: str) -> int:
    """Segments of one SMS as sent (GSM-7: 160, or 153 per part; UCS-2: 70, or 67 per part)."""
    from webhook.channels.sms import is_gsm7

    n = len(body)
    if is_gsm7(body):
        return 1 if n <= 160 else -(-n // 153)
    return 1 if n <= 70 else -(-n // 67)
