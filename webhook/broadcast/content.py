"""What campaign messages and the subscription replies say, in every language, from the Babel
catalogs in ``locale/`` (the msgid is English; ``locale/vi`` holds the Vietnamese, which is the
text people receive by default). ``pybabel extract`` finds the strings through ``_l``.

Rules every campaign text follows (tests check them in every language):
- a neutral first line, so that a lock-screen preview or someone glancing at the phone sees
  nothing about violence;
- only facts of ``data/kb/`` (``FACTS`` names them per message: the action months, the 2019 Quảng
  Nam slogans, 111 for children and for trafficking at any age, 113) and no invented number, law
  or fine; the counselling line only as the marker ``[[line: …]]``, rendered at send time from the
  directory (bot/kb/line.py): a line that is not verified is left out;
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
# version (``CONSENT_VERSIONS``; a test fails when the text changes without one). Every consent
# record keeps the version the person agreed to; ``CONSENT_TEXTS`` keeps every version's text.
# 2026-12-v2 names the law in force since 1/1/2026 (Personal Data Protection Law 91/2025/QH15;
# facts pdpl_consent, decree_356_consent_methods) and how to erase.
CONSENT_VERSION = "2026-12-v2"
CONSENT = _l("Hello, you wrote DK.\n"
             "If you agree, you will receive campaign messages against violence from the Social Work Center: "
             "at most 3 a day, only between 07:00 and 22:00 (or the hours you choose: write GIO 19-21). "
             "Under the Personal Data Protection Law 2025 we keep only your contact and this consent, until you "
             "stop. Write HUY at any time to stop, XOA to erase your data. "
             "To agree, write CO. If you do not answer, nothing will be sent.")
CONSENT_V1 = _l("Hello, you wrote DK.\n"
                "If you agree, you will receive campaign messages against violence from the Social Work Center: "
                "at most 3 a day, only between 07:00 and 22:00 (or the hours you choose: write GIO 19-21). "
                "We keep your contact and this consent, nothing else, until you stop. Write HUY at any time to stop. "
                "To agree, write CO. If you do not answer, nothing will be sent.")
CONSENT_TEXTS = {"2026-11-v1": CONSENT_V1, "2026-12-v2": CONSENT}
CONSENT_VERSIONS = {"2026-11-v1": "9ae87094d1df", "2026-12-v2": "e4fbc7f1ad5e"}   # version -> consent_digest(version)
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
# key -> (occasion, audience, text). The first line is neutral; ``FACTS`` names what each rests on.
MESSAGES = {
    "june_dv_month": ("june_dv_month", "all", _l(
        "Hello, this is the message you signed up for.\n"
        "June is the National Action Month on domestic violence prevention: \"End violence, foster love\". "
        "If you or someone you know needs help, write to us[[line: or call @line (free, @hours)]]. In danger: 113.\n"
        "Write HUY to stop these messages.")),
    "gbv_action_month": ("gbv_action_month", "all", _l(
        "Hello, this is the message you signed up for.\n"
        "15 November to 15 December is the Action Month for gender equality and the prevention of gender-based "
        "violence. Speak up when there is violence: people will help you. Write to us[[line: or call @line (free, "
        "@hours)]]; 111 for children and to report trafficking; 113 in danger.\n"
        "Write HUY to stop these messages.")),
    "nov25": ("nov25", "all", _l(
        "Hello, this is the message you signed up for.\n"
        "25 November is the International Day for the Elimination of Violence against Women. Violence is never "
        "your fault. Write to us[[line: or call @line (free, @hours)]]; in danger, 113.\n"
        "Write HUY to stop these messages.")),
    "students": (None, "student", _l(
        "Hello, this is the message you signed up for.\n"
        "If someone at school hits, bullies or touches you in a way you do not want, it is not your fault. "
        "Call 111 (free, day and night) or write to us.\n"
        "Write HUY to stop these messages.")),
}
# What each text rests on (data/kb/legal_facts.yml, services.yml); `helpline kb check` reads it.
FACTS = {
    "june_dv_month": (["campaign_dv_action_month", "campaign_messages_quang_nam_2019"], ["police", "social_work_center"]),
    "gbv_action_month": (["campaign_gender_equality_month", "campaign_messages_quang_nam_2019", "hotline_111_trafficking"],
                         ["hotline_111", "police", "social_work_center"]),
    "nov25": (["campaign_25_november"], ["police", "social_work_center"]),
    "students": (["hotline_111"], ["hotline_111"]),
    "consent": (["pdpl_2025", "pdpl_consent", "decree_356_consent_methods", "decree_91_2020_sms"], []),
}


def citations() -> list:
    """The campaign texts as ``bot.kb.check.Citation``s (their Vietnamese, as people get them)."""
    from bot.kb.check import Citation

    out = []
    for key, (facts, services) in FACTS.items():
        msgid = CONSENT if key == "consent" else MESSAGES[key][2]
        out.append(Citation(f"campaign:{key}", tuple(facts), (), tuple(services), text(msgid, "vi")))
    return out


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


def consent_digest(version: str = CONSENT_VERSION) -> str:
    """A fingerprint of a consent version's text in every language: ``CONSENT_VERSIONS`` must
    name it, so a text cannot change without a new version (the tests check)."""
    msgid = CONSENT_TEXTS[version]
    return hashlib.sha256("\n".join(text(msgid, lang) for lang in LANGUAGES).encode("utf-8")).hexdigest()[:12]


# --- SMS length and cost (domain_brief §5.1) ------------------------------------------------------------

def sms_segments(body: str) -> int:
    """Segments of one SMS as sent (GSM-7: 160, or 153 per part; UCS-2: 70, or 67 per part)."""
    from webhook.channels.sms import is_gsm7

    n = len(body)
    if is_gsm7(body):
        return 1 if n <= 160 else -(-n // 153)
    return 1 if n <= 70 else -(-n // 67)
