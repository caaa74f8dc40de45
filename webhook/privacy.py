"""Pseudonyms, encryption at rest and masking: the three ways an address or a message stays secret.

- A contact is known by a pseudonym: HMAC-SHA256 of channel + address with the server secret.
  Statistics, logs, Rasa's sender id and the action server only ever see pseudonyms.
- The address is needed to reply and the message body to answer and hand over, so both are stored
  encrypted (Fernet: AES-128-CBC + HMAC-SHA256) with a key derived from the same secret.
- Counsellors see addresses masked ("+84•••••4567").
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Optional

from cryptography.fernet import Fernet, InvalidToken


class Vault:
    def __init__(self, secret_key: str):
        if not secret_key:
            raise ValueError("a secret key is required")
        self._pseudo_key = hmac.new(secret_key.encode(), b"helpline/pseudonym/v1", hashlib.sha256).digest()
        fernet_key = hmac.new(secret_key.encode(), b"helpline/fernet/v1", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(fernet_key))

    def pseudonym(self, channel: str, address: str) -> str:
        mac = hmac.new(self._pseudo_key, f"{channel}\x1f{address}".encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()[:32]

    def seal(self, text: Optional[str]) -> Optional[bytes]:
        if text is None:
            return None
        return self._fernet.encrypt(text.encode("utf-8"))

    def open(self, token: Optional[bytes]) -> Optional[str]:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            # A body sealed with another key (secret rotated without re-encryption): never crash a
            # reply path over it, and never log the ciphertext.
            return None


def mask(address: Optional[str]) -> str:
    """Enough for a counsellor to tell two contacts apart, not enough to dial."""
    if not address:
        return "—"
    keep = 3 if len(address) > 6 else 1
    return address[:3] + "•" * max(3, len(address) - 3 - keep) + address[-keep:] if len(address) > 6 \
        else "•" * (len(address) - 1) + address[-1:]
