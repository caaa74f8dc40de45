"""A message read in its conversation (the taxonomy's conversation-level risk).

What a conversation carries from one message to the next (``Context``):

    risk    the highest risk so far; it never drops within a conversation without a counsellor's
            decision (a calm "cảm ơn" after a disclosure of beatings is still that conversation)
    topic   the most salient topic so far (``bot.intents.SALIENCE``)
    asked   the question the bot's last reply asked: ``safe_now`` ("Bạn có an toàn để nhắn tin
            lúc này không?"), ``counsellor`` (the offer of a counsellor) or ``locality``

Where it comes from: the gateway keeps it on the conversation row and sends it to Rasa with each
message (``metadata.context``); the NLU's last component (``RiskAnnotator``) reads the message
with it, so the dialogue acts on the reading in context. ``asked`` is declared by the responses
themselves (``custom: {asks: …}`` in ``bot/domain/responses.yml``): the gateway takes it from
what Rasa sent; ``helpline classify`` on a conversation, which runs no dialogue, takes it from the
same declarations through the rules (``asks_after``).

How the context changes the reading (``read``):

* an answer to the bot's yes/no question is read as that answer, in any spelling ("có", "co",
  "uh", "ok", "ko", "k", "hông"); "no, I am not safe" (or "ổng đang ở nhà") is danger;
* inside a disclosure, words that would mean nothing alone ("tối nay ổng về", "lại bị như hôm
  trước") are read as part of it: someone coming back, or the violence happening again, is
  ``high``; anything else the model cannot place continues the disclosure instead of the fallback;
* the conversation's risk is the highest so far.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Optional

from bot import intents as I
from bot.nlu.normalize import normalize

ASKS = ("safe_now", "counsellor", "locality")
VIOLENCE_TOPICS = frozenset({"domestic_violence", "sexual_violence", "sexual_harassment", "child_abuse",
                             "school_violence", "online_violence", "forced_marriage_trafficking", "emergency",
                             "self_harm"})


@dataclass
class Context:
    risk: str = "none"
    topic: Optional[str] = None
    asked: Optional[str] = None

    @classmethod
    def of(cls, data) -> "Context":
        """From metadata (anything malformed is an empty context, never an error)."""
        if isinstance(data, Context):
            return data
        if not isinstance(data, dict):
            return cls()
        risk = data.get("risk") if data.get("risk") in I.RISK_LEVELS else "none"
        topic = data.get("topic") if data.get("topic") in I.TOPICS else None
        asked = data.get("asked") if data.get("asked") in ASKS else None
        return cls(risk, topic, asked)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def disclosing(self) -> bool:
        return I.risk_rank(self.risk) >= I.risk_rank("medium") and self.topic in VIOLENCE_TOPICS

    def after(self, risk: str, topic: Optional[str], asked: Optional[str]) -> "Context":
        """The context once a message with this reading was answered."""
        risk = risk if risk in I.RISK_LEVELS else "none"
        topic = topic if topic in I.TOPICS else None
        keep = risk == "none" and self.topic          # a question or a "thanks" does not change the subject
        return Context(I.max_risk(self.risk, risk), self.topic if keep else (I.salient(self.topic, topic) or self.topic),
                       asked if asked in ASKS else None)


# --- short answers, in any spelling (normalised: folded, teencode expanded) ----------------------
_YES = re.compile(r"^(?:(?:da|vang|u|uh|uhm|um|o|co|co a|da co|co chu|dung|dung roi|duoc|ok|oke|okie|okay|yes|yeah|yep"
                  r"|roi|an toan|co an toan|em an toan|toi an toan|minh an toan|tui an toan|i am safe|im safe|safe)\s*)+"
                  r"(?:\s*(?:a|anh|chi|em|ban|nha|nhe|ah|oi|ad|admin))*$")
_NO = re.compile(r"^(?:(?:da|vang|u|thi|that ra|noi that)\s+)?(?:khong|ko|k|hong|hok|chua|khong a|khong co|no|nope|not really"
                 r"|khong han|khong dau|chua an toan|khong an toan|ko an toan|not safe|i am not safe|im not safe)"
                 r"(?:\s+(?:a|anh|chi|em|ban|dau|lam|nha|het|duoc|an toan|safe|ad|admin))*$")
# "not safe" in more words: he is here, in the house, next to me, watching
_NOT_SAFE = re.compile(r"\b(?:khong an toan|chua an toan|not safe|(?:no|han|ong|ong ay|anh ay|chong|ba ay|bo|ong ta|anh ta|he)"
                       r" (?:dang |van |con )?(?:o (?:nha|ben canh|day|ngoai|phong ben)|ngoi (?:ben|canh)|dung (?:ben|canh|ngoai)"
                       r"|dang ve|sap ve|ve roi|nhin|xem dien thoai|canh)|is (?:here|home|next to me|watching))\b")
# someone coming back, or the violence again: read inside a disclosure
_RETURNS = re.compile(
    r"\b(?:(?:no|han|ong|ong ay|anh ay|ba ay|chong|bo|cha|thang do|ga do|anh ta|ong ta|he|him)\s+(?:\w+\s+){0,3}"
    r"(?:ve|toi|den|qua|len|quay lai|tro lai|sap ve|coming|comes|is coming|back|home)"
    r"|(?:toi nay|dem nay|chut nua|lat nua|sap|mai|tonight|soon)\s+(?:\w+\s+){0,2}(?:ve|toi|den|quay lai|back)"
    r"|lai bi|lai danh|lai (?:\w+\s+)?nhu (?:hom|lan|bua)|nhu (?:hom|lan|bua) (?:truoc|qua|do)|again|lai (?:chui|do|dap|doa))\b")
_NOW = re.compile(r"\b(?:dang|roi|bay gio|ngay|luc nay|now|right now|already)\b")


def short_answer(text: str) -> Optional[str]:
    """``yes`` / ``no`` when the whole message is a short answer, else None."""
    if len(text) > 60:
        return None
    norm = normalize(text)
    if not norm or len(norm) > 40:
        return None
    if _NO.match(norm):
        return "no"
    if _YES.match(norm):
        return "yes"
    return None


# said in so many words, with or without a question before it
_SAYS_UNSAFE = re.compile(r"^(?:(?:da|vang|alo|oi|chi oi|anh oi|ad oi|thi|that ra) )*(?:khong|chua|chang) (?:duoc |con )?an toan\b"
                          r"|\b(?:em|toi|tui|minh|tao|con|chau) (?:dang |thay |cam thay |van |hien )?(?:khong|chua|chang) (?:duoc |con )?an toan\b"
                          r"|\b(?:i am|i m|im|i feel) not safe\b|^not safe\b")


def says_unsafe(text: str) -> bool:
    """"không an toàn", "em không an toàn", "I'm not safe": the person says they are not safe (not
    "ở nhà không an toàn nữa", which asks for a place to stay)."""
    norm = normalize(text)
    return bool(_SAYS_UNSAFE.search(norm)) and not re.search(r"\b(?:co|lieu) (?:\w+ ){0,4}an toan (?:khong|ko|k)\b", norm)


def not_safe(text: str) -> bool:
    return bool(_NOT_SAFE.search(normalize(text)))


def returns(text: str) -> bool:
    return bool(_RETURNS.search(normalize(text)))


def now(text: str) -> bool:
    return bool(_NOW.search(normalize(text)))


# --- what a reply asks: declared by the responses, reached through the rules --------------------
@lru_cache(maxsize=1)
def rule_replies() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(intent, the actions its rule runs) for every unconditioned rule that starts with an
    intent, in file order (data/dialogue/*.yml)."""
    import yaml

    from bot import paths

    out = []
    for f in sorted(paths.DIALOGUE_DATA.glob("*.yml")):
        for rule in (yaml.safe_load(f.read_text("utf-8")) or {}).get("rules") or []:
            steps = rule.get("steps") or []
            if not steps or "intent" not in steps[0] or rule.get("condition"):
                continue
            actions = []
            for step in steps[1:]:
                if "intent" in step:
                    break
                if step.get("action"):
                    actions.append(step["action"])
            out.append((steps[0]["intent"], tuple(actions)))
    return tuple(out)


@lru_cache(maxsize=1)
def _asks_table() -> dict[str, Optional[str]]:
    """Dialogue intent → the question its rule's last asking response asks (None: asks nothing).
    Built from ``custom.asks`` in the domain's responses and the rules that follow each intent."""
    import yaml

    from bot import paths

    asks: dict[str, str] = {}
    for f in sorted(paths.DOMAIN.glob("*.yml")):
        data = yaml.safe_load(f.read_text("utf-8")) or {}
        for name, variants in (data.get("responses") or {}).items():
            for v in variants or []:
                a = ((v or {}).get("custom") or {}).get("asks")
                if a in ASKS:
                    asks[name] = a
    table: dict[str, Optional[str]] = {}
    for intent, actions in rule_replies():
        asked = [asks[a] for a in actions if a in asks]
        table.setdefault(intent, asked[-1] if asked else None)
    return table


def asks_after(intent: str) -> Optional[str]:
    """What the bot's reply to a message with this dialogue intent asks (for a reader that runs no
    dialogue: ``helpline classify`` on conversations)."""
    return _asks_table().get(intent)


# --- who is writing ------------------------------------------------------------------------------
# Said of themselves by the writer: a pupil, a child of an age, a parent about their child, a
# witness about someone else, an older person. The dialogue answers for them (a child is pointed
# to 111, a trusted adult and the school, not to a no-contact order).
_WRITER = (
    ("child", re.compile(r"\b(?:(?:em|con|minh|tui|toi|chau|tao|to) (?:la |dang |moi |nam nay |hien )?(?:hoc sinh|hs|hoc lop|lop [1-9]\b|lop 1[0-2]\b)"
                         r"|(?:em|con|minh|tui|toi|chau|tao|to) (?:nam nay |moi |chi |vua |sap )?(?:[6-9]|1[0-7]) (?:tuoi|t)\b"
                         r"|^(?:em|con|minh) (?:hoc )?lop (?:[1-9]|1[0-2])\b|\bi am (?:[6-9]|1[0-7])\b|\bi'?m (?:[6-9]|1[0-7])\b)")),
    ("elder", re.compile(r"\b(?:(?:toi|tui|bac|ba|ong|minh) (?:nam nay |da )?(?:6[0-9]|[7-9][0-9]) tuoi|nguoi gia (?:nhu )?(?:toi|tui)"
                         r"|con (?:trai|gai|dau|re) (?:toi|tui|bac) (?:\w+ ){0,3}(?:danh|chui|bo doi|duoi|khong cho an)|i am (?:6[5-9]|[7-9][0-9])\b)")),
    ("parent", re.compile(r"\b(?:con (?:toi|em|tui|minh)|chau (?:toi|em|tui|minh)|dua (?:con|nho) (?:nha )?(?:toi|em|tui|minh)"
                          r"|be nha (?:toi|em|minh)|my (?:son|daughter|child|kid))\b(?!.{0,30}\b(?:danh|chui|duoi) (?:toi|em|tui|minh)\b)")),
    ("witness", re.compile(r"\b(?:hang xom|nha ben canh|nha ke ben|ban (?:toi|em|tui|minh|than)|chi (?:gai )?(?:toi|em|tui|minh)"
                           r"|em (?:gai|trai) (?:toi|em|tui|minh)|dong nghiep (?:toi|em|minh)|(?:my )?(?:neighbou?r|friend|sister|colleague))\b")),
)


def writer(text: str) -> Optional[str]:
    """Who the writer says they are, when the message says it."""
    norm = normalize(text)
    for name, pattern in _WRITER:
        if pattern.search(norm) or (name in ("elder", "witness", "parent") and pattern.search(text.lower())):
            return name
    return None
