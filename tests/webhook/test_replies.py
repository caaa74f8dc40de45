"""The gateway's own replies (webhook/replies.py) are the domain's general variations: a variation
for one kind of person (a child, a witness) is Rasa's to choose, never the gateway's text for all."""
import yaml

from bot.paths import DOMAIN
from webhook import replies


def test_the_gateway_sends_the_general_variation_not_one_for_a_child():
    variants = {}
    for path in DOMAIN.glob("*.yml"):
        variants.update((yaml.safe_load(path.read_text("utf-8")) or {}).get("responses") or {})
    general = [v["text"] for v in variants[replies.EMERGENCY] if not v.get("condition")]
    for_a_child = [v["text"] for v in variants[replies.EMERGENCY]
                   if any(c.get("name") == "who" for c in v.get("condition") or [])]
    assert general and for_a_child              # the domain has both (the test would prove nothing otherwise)
    assert replies.text(replies.EMERGENCY) == general[0]
    assert replies.text(replies.EMERGENCY) not in for_a_child
    english = [v["text"] for v in variants[replies.EMERGENCY]
               if [c.get("name") for c in v.get("condition") or []] == ["language"] and v["condition"][0]["value"] == "en"]
    assert replies.text(replies.EMERGENCY, "en") == english[0]
