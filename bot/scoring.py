"""Scores the classifier on labelled case files: single messages and whole conversations.

A message file holds JSON lines ``{"id", "text", "topics": [accepted], "risk_ok": [accepted]}``.
A conversation file holds ``{"id", "turns": [{"text", "topics", "risk_ok"}, ...]}``: each turn is
read in its conversation (``bot.context``) and scored on the *conversation's* risk after it, the
figure the queue acts on. Every file is scored twice, as written and with the diacritics removed
(as many SMS are typed).

Figures, per variant:
    topic        share of messages (turns) whose topic is accepted
    risk         share whose risk is accepted
    esc          escalation recall: of those that must escalate (accepted ⊆ {high, imminent}),
                 the share read as high or imminent
    imm          of those accepted only as imminent, the share read as imminent
    alarm        of those accepted only as none, the share read as high or imminent
    silent       of those that describe harm (accepted ⊆ {medium, high, imminent}), the share
                 read as none: an information answer and no offer of a person

Used by ``helpline eval`` (every set it is given, misses listed) and by the tests; it calls the
same ``Classifier`` as ``helpline classify``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from bot.nlu.normalize import strip_diacritics

URGENT = frozenset({"high", "imminent"})
HARM = frozenset({"medium", "high", "imminent"})


# the text as typed without diacritics
plain = strip_diacritics


def load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def is_conversations(cases: list[dict]) -> bool:
    return bool(cases) and "turns" in cases[0]


@dataclass
class Item:
    """One scored message: its labels and what the system read."""

    id: str
    text: str
    topics: list[str]
    risk_ok: list[str]
    topic: Optional[str] = None
    risk: Optional[str] = None

    @property
    def topic_ok(self) -> bool:
        return self.topic in self.topics

    @property
    def risk_good(self) -> bool:
        return self.risk in self.risk_ok


@dataclass
class Score:
    n: int = 0
    topic: float = 0.0
    risk: float = 0.0
    esc: float = 1.0
    imm: float = 1.0
    alarm: float = 0.0
    silent: float = 0.0
    counts: str = ""
    misses: list[Item] = field(default_factory=list)


def _share(hits: int, total: int, empty: float) -> float:
    return hits / total if total else empty


def score(items: list[Item]) -> Score:
    must_esc = [i for i in items if set(i.risk_ok) <= URGENT]
    must_imm = [i for i in items if i.risk_ok == ["imminent"]]
    calm = [i for i in items if i.risk_ok == ["none"]]
    harm = [i for i in items if set(i.risk_ok) <= HARM]
    esc = sum(i.risk in URGENT for i in must_esc)
    imm = sum(i.risk == "imminent" for i in must_imm)
    alarm = sum(i.risk in URGENT for i in calm)
    silent = sum(i.risk == "none" for i in harm)
    n = len(items)
    return Score(
        n=n,
        topic=_share(sum(i.topic_ok for i in items), n, 1.0),
        risk=_share(sum(i.risk_good for i in items), n, 1.0),
        esc=_share(esc, len(must_esc), 1.0),
        imm=_share(imm, len(must_imm), 1.0),
        alarm=_share(alarm, len(calm), 0.0),
        silent=_share(silent, len(harm), 0.0),
        counts=f"esc {esc}/{len(must_esc)} imm {imm}/{len(must_imm)} alarm {alarm}/{len(calm)} silent {silent}/{len(harm)}",
        misses=[i for i in items if not (i.topic_ok and i.risk_good)],
    )


# A reader takes the texts of one conversation (a single message is a conversation of one) and
# returns, for each, (topic, risk) where risk is the conversation's risk after that message.
Reader = Callable[[list[str]], list[tuple[str, str]]]


def read_cases(cases: list[dict], reader: Reader, strip: bool) -> list[Item]:
    items: list[Item] = []
    convs = is_conversations(cases)
    for case in cases:
        turns = case["turns"] if convs else [case]
        texts = [plain(t["text"]) if strip else t["text"] for t in turns]
        for k, (turn, text, (topic, risk)) in enumerate(zip(turns, texts, reader(texts)), 1):
            cid = f"{case['id']}#{k}" if convs else case["id"]
            items.append(Item(cid + ("-nd" if strip else ""), text, list(turn["topics"]), list(turn["risk_ok"]),
                              topic, risk))
    return items


HEADER = f"{'variant':14} {'n':>4} {'topic':>6} {'risk':>6} {'esc':>6} {'imm':>6} {'alarm':>6} {'silent':>6}  counts"


def line(name: str, s: Score) -> str:
    return (f"{name:14} {s.n:4d} {s.topic:6.3f} {s.risk:6.3f} {s.esc:6.3f} {s.imm:6.3f} {s.alarm:6.3f} "
            f"{s.silent:6.3f}  {s.counts}")


def report(cases: list[dict], reader: Reader, misses: bool = True, width: int = 100) -> tuple[str, dict[str, Score]]:
    """The table for both variants and, with ``misses``, every message read wrongly."""
    results = {name: score(read_cases(cases, reader, strip)) for name, strip in
               (("as written", False), ("no diacritics", True))}
    out = [HEADER] + [line(name, s) for name, s in results.items()]
    if misses:
        out.append("")
        out.append("misses (topic or risk):")
        for s in results.values():
            for i in s.misses:
                out.append(f"  {i.id}: {i.text[:width]!r} -> {i.topic}/{i.risk} "
                           f"(want {'/'.join(i.topics)}, {'/'.join(i.risk_ok)})")
    return "\n".join(out), results


def worst(results: dict[str, Score]) -> Score:
    """The worst figure of both variants, each on its own."""
    vals = list(results.values())
    return Score(n=vals[0].n, topic=min(v.topic for v in vals), risk=min(v.risk for v in vals),
                 esc=min(v.esc for v in vals), imm=min(v.imm for v in vals),
                 alarm=max(v.alarm for v in vals), silent=max(v.silent for v in vals))


def iter_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        found.extend(sorted(p.rglob("*.jsonl")) if p.is_dir() else [p])
    return found
