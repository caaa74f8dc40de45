"""SMS through Twilio.

Inbound: Twilio POSTs a form to /webhooks/sms, signed with X-Twilio-Signature (HMAC-SHA1 over the
URL Twilio called plus every POST parameter). We check it with twilio's own RequestValidator
against the configured public URL, because behind a proxy ``request.url`` is not what Twilio saw.
The answer is an empty TwiML document; replies go later through the REST API from the outbox, so a
slow bot never makes Twilio time out.

Outbound: Vietnamese diacritics force UCS-2 (70 characters per SMS instead of 160), so replies are
sent without diacritics by default and split at word boundaries into single messages. Error 21610
means the person sent STOP to Twilio: the contact is marked stopped.
"""
from __future__ import annotations

import logging
from typing import Optional

from flask import Request, Response
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.nlu.normalize import strip_diacritics
from webhook.channels.base import (EMPTY, MEDIA, TEXT, Adapter, BadRequest, Forbidden, Inbound, SendResult,
                                   split_words)

logger = logging.getLogger(__name__)

GSM_SINGLE, UCS2_SINGLE = 160, 70
# Twilio error codes that will not get better by retrying.
STOPPED_CODES = {21610}                       # unsubscribed recipient (STOP)
PERMANENT_CODES = {21211, 21612, 21614, 21408, 21606}  # invalid/unreachable number, region, sender
_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM7 for ch in text)


class SmsAdapter(Adapter):
    name = "sms"
    redact_fields = ("From", "To", "Body", "FromCity", "FromState", "FromZip", "ToCity", "ToState", "ToZip")
    path = "/webhooks/sms"

    def __init__(self, settings):
        # twilio-python logs every request at INFO (URL, headers; a message lookup has the phone
        # number in its URL): nothing of it may reach our logs
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)    # its DEBUG line is the URL
        self.settings = settings
        self.validator = RequestValidator(settings.twilio_auth_token)
        # twilio's HTTP client has no timeout unless given one
        self.client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                             http_client=TwilioHttpClient(timeout=10, pool_connections=True))
        if settings.twilio_api_base:
            self.client.api.base_url = settings.twilio_api_base.rstrip("/")
        self.public_url = settings.public_url.rstrip("/")

    # --- inbound ---------------------------------------------------------------------------------
    def _check_signature(self, request: Request, path: str) -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise Forbidden("missing X-Twilio-Signature")
        url = self.public_url + path
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        if not self.validator.validate(url, request.form, signature):
            raise Forbidden("bad X-Twilio-Signature")

    def verify(self, request: Request) -> None:
        self._check_signature(request, self.path)

    def parse(self, request: Request) -> list[Inbound]:
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsMessageSid")
        sender = form.get("From")
        if not sid or not sender:
            raise BadRequest("MessageSid and From are required")
        if form.get("AccountSid") and form.get("AccountSid") != self.settings.twilio_account_sid:
            raise Forbidden("message for another account")
        try:
            media = int(form.get("NumMedia", "0") or 0)
        except ValueError:
            raise BadRequest("NumMedia must be a number") from None
        body = form.get("Body") or ""
        kind = TEXT if body.strip() else (MEDIA if media else EMPTY)
        return [Inbound(channel=self.name, address=sender, provider_msg_id=sid, kind=kind,
                        text=body if kind == TEXT else None)]

    def ack(self, inbound) -> Response:
        return Response('<?xml version="1.0" encoding="UTF-8"?><Response/>', status=200, mimetype="text/xml")

    def verify_status(self, request: Request) -> tuple[str, str, Optional[str]]:
        """A delivery status callback: (MessageSid, MessageStatus, ErrorCode)."""
        self._check_signature(request, self.path + "/status")
        sid, status = request.form.get("MessageSid"), request.form.get("MessageStatus")
        if not sid or not status:
            raise BadRequest("MessageSid and MessageStatus are required")
        return sid, status, request.form.get("ErrorCode") or None

    # --- outbound --------------------------------------------------------------------------------
    def render(self, text: str) -> list[str]:
        if self.settings.sms_unaccented:
            text = strip_diacritics(text)
        limit = GSM_SINGLE if is_gsm7(text) else UCS2_SINGLE
        return split_words(text, limit)

    def send(self, address: str, text: str, reply_ref: Optional[str] = None) -> SendResult:
        kwargs = {"to": address, "body": text, "status_callback": self.public_url + self.path + "/status"}
        if self.settings.twilio_messaging_service_sid:
            kwargs["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
        else:
            kwargs["from_"] = self.settings.twilio_from
        try:
            msg = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            code = exc.code
            if code in STOPPED_CODES:
                return SendResult(False, stop_contact=True, undeliverable=True, error_code=str(code))
            if code in PERMANENT_CODES or (400 <= (exc.status or 0) < 500 and exc.status != 429):
                return SendResult(False, undeliverable=True, error_code=str(code or exc.status))
            return SendResult(False, retry=True, error_code=str(code or exc.status))
        except Exception as exc:  # network errors from requests, timeouts
            logger.warning("sms_send_error error=%s", type(exc).__name__)
            return SendResult(False, retry=True, error_code=type(exc).__name__, ambiguous=_maybe_sent(exc))
        return SendResult(True, provider_msg_id=msg.sid)


    def lookup_sent(self, address: str, body: str, since: float, exclude: frozenset = frozenset()) -> Optional[str]:
        """The sid of a message with this body that Twilio took for ``address`` since ``since``
        (a worker died during the call, a timeout: did it go?), other than the sids in
        ``exclude`` (already recorded for other rows). None when Twilio has none."""
        # not filtered by DateSent: a message Twilio still queues has no sent date yet
        for msg in self.client.messages.list(to=address, limit=50):
            created = msg.date_created
            if created is not None and created.timestamp() < since - 120:     # clocks may differ a little
                continue
            if str(msg.status or "") in ("failed", "undelivered", "canceled"):
                continue                # taken but not delivered: the person has nothing, send again
            if (msg.body or "") == body and str(msg.direction or "").startswith("outbound") and msg.sid not in exclude:
                return msg.sid
        return None


def _maybe_sent(exc: Exception) -> bool:
    """Did the request perhaps reach Twilio? A connection that was never made: no. A timeout or a
    connection lost while waiting for the answer: perhaps."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        return not ("Connection refused" in text or "Failed to establish" in text or "Name or service" in text)
    return isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError, OSError))
