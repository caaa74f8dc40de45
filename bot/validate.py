"""`rasa data validate --fail-on-warnings`, with one informed exception.

Rasa's validator warns that an utterance is "not used in any story or rule" when only a custom
action sends it (``dispatcher.utter_message(response=...)``): it cannot read Python. Those
utterances are allowed here exactly when an action in ``actions/`` names them; every other warning
fails, as with ``--fail-on-warnings``.
"""
from __future__ import annotations

import re
import sys
import warnings

from bot import paths

UNUSED = re.compile(r"The utterance '(utter_[a-z_]+)' is not used in any story or rule")


def utterances_sent_by_actions() -> set[str]:
    """Responses named in Python: by custom actions, and by the gateway (its degraded-mode and
    bad-input replies are domain responses too, so all wording has one home)."""
    found: set[str] = set()
    for f in [*(paths.ROOT / "actions").glob("*.py"), *(paths.ROOT / "webhook").rglob("*.py")]:
        found |= set(re.findall(r'"(utter_[a-z_]+)"', f.read_text("utf-8")))
    return found


def main() -> int:
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.validator import Validator

    importer = TrainingDataImporter.load_from_config(
        str(paths.CONFIG), str(paths.DOMAIN), [str(paths.NLU_DATA), str(paths.DIALOGUE_DATA)])
    allowed = utterances_sent_by_actions()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validator = Validator.from_importer(importer)
        ok = all([
            validator.verify_domain_validity(),
            validator.verify_actions_in_stories_rules(),
            validator.verify_forms_in_stories_rules(),
            validator.verify_form_slots(),
            validator.verify_slot_mappings(),
            validator.verify_nlu(True),
            validator.verify_story_structure(True),
        ])
    problems = []
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)) or "MovedIn20Warning" in str(w.category):
            continue
        text = str(w.message)
        m = UNUSED.search(text)
        if m and m.group(1) in allowed:
            continue
        if text.startswith("Slot auto-fill has been removed"):
            continue  # Rasa's 2.x→3.x migration notice, printed for any domain with slots
        if w.filename and "rasa" not in w.filename and "bot" not in w.filename:
            continue
        problems.append(text)
    for p in problems:
        print(f"validation warning: {p}", file=sys.stderr)
    if not ok or problems:
        print("training data validation failed", file=sys.stderr)
        return 1
    print(f"training data valid ({len(allowed)} utterances are sent by custom actions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
