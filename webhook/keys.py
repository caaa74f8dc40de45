"""Encryption keys: generate one, re-encrypt everything with the first configured key (rotate),
and check that every sealed value opens.

Rotating, step by step (docs/privacy.md):
1. ``helpline keys generate`` prints a new key;
2. put it FIRST in ``HELPLINE_ENCRYPTION_KEYS`` (or the key file), keep the old one after it, and
   restart the gateway and the worker (they now write with the new key and read both);
3. ``helpline keys rotate`` re-encrypts every sealed value with the new key, in batches (safe to
   run while the helpline runs, safe to run again: a value already under the new key is rewritten
   under it);
4. ``helpline keys check`` must say every value opens with the first key alone; then remove the old
   key and restart.
Nothing here prints or logs a plaintext or a ciphertext: only table names and counts.
"""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, update

from webhook.db import transaction
from webhook.models import CaseNote, Contact, Message, Outbox, ProviderToken
from webhook.privacy import Vault

# (model, primary-key column, sealed columns)
SEALED = ((Contact, Contact.id, ("address_enc",)), (Message, Message.id, ("body_enc",)),
          (Outbox, Outbox.id, ("body_enc",)), (CaseNote, CaseNote.id, ("body_enc",)),
          (ProviderToken, ProviderToken.channel, ("access_token_enc", "refresh_token_enc")))


def generate() -> str:
    return Fernet.generate_key().decode()


def _batches(gw, model, pk, batch: int):
    last = None
    while True:
        with transaction(gw.Session) as s:
            q = select(model).order_by(pk).limit(batch)
            if last is not None:
                q = q.where(pk > last)
            rows = list(s.execute(q).scalars())
            if not rows:
                return
            yield s, rows
            last = getattr(rows[-1], pk.key)


def _sealed(gw, batch: int):
    """(session, model, pk, row, column, token) for every sealed value that is set, table by table."""
    for model, pk, columns in SEALED:
        for s, rows in _batches(gw, model, pk, batch):
            for row in rows:
                for col in columns:
                    token = getattr(row, col)
                    if token is not None:
                        yield s, model, pk, row, col, bytes(token)


def rotate(gw, batch: int = 500) -> dict:
    """Re-encrypt every sealed value with the first key. Returns counts per table; values no
    configured key opens are left as they are and counted as ``unreadable``."""
    out = {model.__tablename__: {"rotated": 0, "unreadable": 0} for model, _pk, _cols in SEALED}
    for s, model, pk, row, col, token in _sealed(gw, batch):
        try:
            new = gw.vault.rotate(token)
        except InvalidToken:
            out[model.__tablename__]["unreadable"] += 1
            continue
        # only if nobody changed it meanwhile (a message erased during the rotation stays erased)
        s.execute(update(model).where(pk == getattr(row, pk.key), getattr(model, col) == token)
                  .values({col: new}).execution_options(synchronize_session=False))
        out[model.__tablename__]["rotated"] += 1
    return out


def check(gw, batch: int = 1000) -> dict:
    """How many sealed values the FIRST key alone opens, and how many it does not."""
    only_first = Vault("x" * 32, [gw.vault.first_key()])
    out = {model.__tablename__: {"first_key": 0, "other_or_unreadable": 0} for model, _pk, _cols in SEALED}
    for _s, model, _pk, _row, _col, token in _sealed(gw, batch):
        try:
            only_first.rotate(token)
            out[model.__tablename__]["first_key"] += 1
        except InvalidToken:
            out[model.__tablename__]["other_or_unreadable"] += 1
    return out


def cli(gw, action: str) -> int:
    if action == "rotate":
        result = rotate(gw)
        for table, n in result.items():
            print(f"{table:<16} rotated {n['rotated']:>8}  unreadable {n['unreadable']:>6}")
        return 1 if any(n["unreadable"] for n in result.values()) else 0
    result = check(gw)
    for table, n in result.items():
        print(f"{table:<16} first key {n['first_key']:>8}  other key or unreadable {n['other_or_unreadable']:>6}")
    return 1 if any(n["other_or_unreadable"] for n in result.values()) else 0
