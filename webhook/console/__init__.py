"""The counsellors' console: a Flask blueprint inside the gateway (``/console``).

Queue (live, ordered by risk) → case (transcript decrypted on view and audited, masked contact,
reply on the person's channel, notes, transfer, resolve with outcome and referrals, hand back) →
follow-up with consent. Supervisors edit canned responses and read the audit log; admins manage
accounts. See docs/console.md.
"""
from webhook.console.views import console, seed_canned  # noqa: F401
from webhook.console import stats_views  # noqa: F401,E402  (registers the statistics pages)
from webhook.console import broadcast_views  # noqa: F401,E402  (registers the campaign pages)
from webhook.console import privacy_views  # noqa: F401,E402  (a person's data: copy and erasure)
from webhook.console import kb_views  # noqa: F401,E402  (the knowledge base: verification state, checks)
