"""System and console text goes through Babel catalogs in locale/ (conversation wording lives in
the Rasa domain instead). Outside Flask, gettext with the catalog for HELPLINE_LOCALE (vi by
default); a missing catalog falls back to the English source strings."""
from __future__ import annotations

import gettext
import os
from functools import lru_cache

from bot.paths import ROOT


@lru_cache(maxsize=4)
def _translations(locale: str):
    return gettext.translation("messages", localedir=str(ROOT / "locale"), languages=[locale], fallback=True)


def _(message: str) -> str:
    return _translations(os.environ.get("HELPLINE_LOCALE", "vi")).gettext(message)
