"""Key rows as Attune stores them today, made independently of the worker with
Python's `cryptography`: the value is JSONB; an encrypted one is encrypt_json
(AES-256-GCM, key SHA-256 of the key string, over the compact JSON text of the
value, base64 of nonce || ciphertext || tag, stored as a JSON string). Also the
format before migration 0003 (the ciphertext of the raw text), for the upgrade
tests."""
import base64
import hashlib
import json
import os

import psycopg2.extras
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def key_hash_of(key_string):
    return hashlib.sha256(key_string.encode("utf-8")).hexdigest()


def _aes(key_string):
    return AESGCM(hashlib.sha256(key_string.encode("utf-8")).digest())


def json_text(value):
    """The compact JSON text encrypt_json encrypts (serde_json::to_string)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encrypt_raw(plaintext, key_string):
    """base64(nonce || ciphertext || tag) of the bytes or text given."""
    if isinstance(plaintext, str):
        plaintext = plaintext.encode("utf-8")
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _aes(key_string).encrypt(nonce, plaintext, None)).decode()


def decrypt_raw(stored, key_string):
    raw = base64.b64decode(stored, validate=True)
    return _aes(key_string).decrypt(raw[:12], raw[12:], None)


def encrypt_json(value, key_string):
    """Attune's encrypt_json: the base64 text (key.value holds it as a JSON string)."""
    return encrypt_raw(json_text(value), key_string)


def decrypt_json(stored, key_string):
    return json.loads(decrypt_raw(stored, key_string).decode("utf-8"))


def insert_key(db, name, value, owner_type="system", pack=None, action=None, encrypted=False,
               key_string=None, key_hash=None):
    """A key row written as Attune writes it: owner type, the owner's id and the
    local ref; the table's trigger fills owner, owner_*_ref and the canonical
    ref. `pack` and `action` are (id, ref); `db` has value(sql, params)."""
    stored, stored_hash = value, None
    if encrypted:
        stored = encrypt_json(value, key_string)
        stored_hash = key_hash if key_hash is not None else key_hash_of(key_string)
    pack_id = pack[0] if owner_type == "pack" else None
    action_id = action[0] if owner_type == "action" else None
    return db.value(
        "INSERT INTO attune.key (owner_type, owner_pack, owner_action, local_ref, name, "
        "encrypted, encryption_key_hash, value) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "RETURNING id",
        (owner_type, pack_id, action_id, name, name, encrypted, stored_hash,
         psycopg2.extras.Json(stored)))
