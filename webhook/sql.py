"""The statements on the hot path (every message passes through them), as plain SQL that SQLite
and PostgreSQL both accept. Building SQLAlchemy expressions costs more Python time per message
than the database does; these are parsed once. Rare paths keep the ORM."""
from sqlalchemy import text

# receive
DUPLICATE = text("SELECT id, conversation_id FROM messages WHERE channel = :channel AND provider_msg_id = :pid")
CONTACT = text("SELECT id, status, stopped_reason FROM contacts WHERE channel = :channel AND pseudonym = :pseudonym")
INSERT_CONTACT = text(
    "INSERT INTO contacts (channel, pseudonym, address_enc, status, created_at, replies_since_inbound) "
    "VALUES (:channel, :pseudonym, :address_enc, 'active', :now, 0) RETURNING id")
LAST_CONVERSATION = text("SELECT id, mode FROM conversations WHERE contact_id = :contact_id ORDER BY id DESC LIMIT 1")
INSERT_CONVERSATION = text(
    "INSERT INTO conversations (contact_id, channel, rasa_sender, mode, created_at, updated_at) "
    "VALUES (:contact_id, :channel, :sender, 'bot', :now, :now) RETURNING id")
INSERT_MESSAGE = text(
    "INSERT INTO messages (conversation_id, channel, provider_msg_id, kind, body_enc, state, attempts, client_ref, "
    "received_at) VALUES (:conversation_id, :channel, :pid, :kind, :body_enc, 'pending', 0, :client_ref, :now) "
    "RETURNING id")
CONTACT_INBOUND = text(
    "UPDATE contacts SET last_inbound_at = :now, replies_since_inbound = 0, reply_ref = COALESCE(:reply_ref, reply_ref), "
    "status = :status, stopped_reason = :reason WHERE id = :id")

# process
CLAIM = text(
    "UPDATE conversations SET lease_owner = :owner, lease_until = :until WHERE id = :id AND "
    "(lease_owner IS NULL OR lease_until < :now OR lease_owner = :owner)")
RELEASE = text("UPDATE conversations SET lease_owner = NULL, lease_until = NULL WHERE id = :id AND lease_owner = :owner")
NEXT_MESSAGE = text(
    "SELECT m.id, m.conversation_id, m.state, m.kind, m.body_enc, c.channel, c.rasa_sender, c.mode "
    "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
    "WHERE m.conversation_id = :id AND m.state IN ('pending', 'deferred') ORDER BY m.id LIMIT 1")
FINISH_MESSAGE = text(
    "UPDATE messages SET state = :new, answered_at = :now, attempts = attempts + 1, "
    "risk = COALESCE(:risk, risk), topic = COALESCE(:topic, topic) WHERE id = :id AND state = :old")

# outbox
SEND_TARGET = text(
    "SELECT c.id, c.address_enc, c.status, c.stopped_reason, c.last_inbound_at, c.replies_since_inbound, c.reply_ref, "
    "v.channel, EXISTS (SELECT 1 FROM outbox o WHERE o.conversation_id = v.id AND o.state IN ('queued', 'sending')) "
    "FROM conversations v JOIN contacts c ON c.id = v.contact_id WHERE v.id = :id")
INSERT_OUTBOX = text(
    "INSERT INTO outbox (conversation_id, contact_id, channel, source_message_id, seq, kind, body_enc, priority, state, "
    "attempts, next_attempt_at, claimed_by, claimed_until, flagged, created_at) VALUES (:conversation_id, :contact_id, "
    ":channel, :source, :seq, :kind, :body_enc, :priority, :state, :attempts, :now, :claimed_by, :claimed_until, "
    ":flagged, :now) RETURNING id")
MARK_SENT = text(
    "UPDATE outbox SET state = 'sent', sent_at = :now, provider_msg_id = :pid, claimed_by = NULL, claimed_until = NULL "
    "WHERE id = :id AND state = 'sending'")
COUNT_ZALO_REPLY = text("UPDATE contacts SET replies_since_inbound = replies_since_inbound + 1 WHERE id = :id")
HEAD_OF_LINE = text(
    "SELECT id, state, next_attempt_at FROM outbox WHERE conversation_id = :id AND state IN ('queued', 'sending') "
    "ORDER BY priority, id LIMIT 1")
