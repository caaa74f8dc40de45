"""Pseudonyms, encryption at rest and masking: the three ways an address or a message stays secret.

- A contact is known by a pseudonym: HMAC-SHA256 of channel + address with the server secret.
  Statistics, logs, Rasa's sender id and the action server only ever see pseudonyms.
- The address is needed to reply and the message body to answer and hand over, so both are stored
  encrypted (Fernet: AES-128-CBC + HMAC-SHA256). The encryption keys are
  ``HELPLINE_ENCRYPTION_KEYS`` (comma-separated Fernet keys, the first encrypts, every one
  decrypts) or the file ``HELPLINE_ENCRYPTION_KEY_FILE`` (one key per line); without either, one
  key derived from the server secret. ``helpline keys rotate`` re-encrypts every sealed column
  with the first key, after which an old key can be removed (webhook/keys.py). The pseudonym
  secret never rotates: a contact must stay the same contact.
- Counsellors see addresses masked ("+84•••••4567").
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Optional, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def derived_key(secret_key: str) -> bytes:
    """The Fernet key used when no encryption key is configured (the first releases' only key)."""
    return base64.urlsafe_b64encode(hmac.new(secret_key.encode(), b"helpline/fernet/v1", hashlib.sha256).digest())


class Vault:
    def __init__(self, secret_key: str, keys: Sequence[bytes | str] = ()):
        if not secret_key:
            raise ValueError("a secret key is required")
        self._pseudo_key = hmac.new(secret_key.encode(), b"helpline/pseudonym/v1", hashlib.sha256).digest()
        fernets = []
        keys = list(keys) or [derived_key(secret_key)]
        for key in keys:
            try:
                fernets.append(Fernet(key.strip()))
            except (ValueError, TypeError, AttributeError):
                raise ValueError("an encryption key is not a Fernet key (helpline keys generate makes one)") from None
        self._first = keys[0].strip()
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    def first_key(self):
        return self._first

    def rotate(self, token: bytes) -> bytes:
        """The same plaintext sealed with the first key (InvalidToken when no key opens it)."""
        return self._fernet.rotate(bytes(token))

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
