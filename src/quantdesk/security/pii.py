"""Personal data at rest: AES-256-GCM envelopes and keyed blind indexes.

``encrypt`` returns ``"<key id>:<base64url(nonce | ciphertext | tag)>"``: the key id travels
with every value, so keys rotate by putting a new key first in
``QUANTDESK_PII_ENCRYPTION_KEYS``, running ``quantdesk admin reencrypt-pii``, then dropping the
old key.  The field name is the GCM associated data, so a ciphertext copied into another
column does not decrypt.  A random 96-bit nonce per value is safe far beyond our volumes
(NIST SP 800-38D, section 8.3: at most 2^32 values per key).

Equality lookups (find a user by e-mail) use a blind index, HMAC-SHA256 under a separate key,
of the normalised value: the database can match it but cannot reverse it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import unicodedata
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from quantdesk.settings import ConfigurationError, Profile, Settings

KEY_BYTES = 32
NONCE_BYTES = 12
DEV_KEY_FILE = "pii-keys.json"


class PiiDecryptionError(Exception):
    """A value did not decrypt: unknown key id, or tampered ciphertext."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def normalise_email(email: str) -> str:
    """NFKC, trimmed and lower-cased: the form that is indexed and compared."""
    return unicodedata.normalize("NFKC", email).strip().lower()


class PiiCipher:
    def __init__(self, keys: list[tuple[str, bytes]], index_key: bytes) -> None:
        if not keys:
            raise ConfigurationError("QUANTDESK_PII_ENCRYPTION_KEYS must name at least one key")
        for key_id, key in keys:
            if len(key) != KEY_BYTES or ":" in key_id or not key_id:
                raise ConfigurationError(
                    f"QUANTDESK_PII_ENCRYPTION_KEYS: key {key_id!r} must be 32 bytes, base64"
                )
        if len(index_key) < KEY_BYTES:
            raise ConfigurationError("QUANTDESK_PII_INDEX_KEY must be at least 32 bytes")
        self.current_key_id = keys[0][0]
        self._aead = {key_id: AESGCM(key) for key_id, key in keys}
        self._index_key = index_key

    @classmethod
    def from_settings(cls, settings: Settings) -> PiiCipher:
        if settings.pii_encryption_keys is not None and settings.pii_index_key is not None:
            keys = parse_key_list(settings.pii_encryption_keys.get_secret_value())
            index_key = settings.pii_index_key.get_secret_value().encode()
            return cls(keys, index_key)
        if settings.profile is Profile.PROD:
            raise ConfigurationError(
                "QUANTDESK_PII_ENCRYPTION_KEYS and QUANTDESK_PII_INDEX_KEY are required in prod"
            )
        return cls.from_dev_file(settings.var_dir / "keys" / DEV_KEY_FILE)

    @classmethod
    def from_dev_file(cls, path: Path) -> PiiCipher:
        """Keys generated once for dev/test and kept under ``var/`` (never used in prod)."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            document = {
                "encryption_keys": f"dev1:{_b64(AESGCM.generate_key(bit_length=256))}",
                "index_key": secrets.token_urlsafe(48),
            }
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    json.dump(document, handle)
        document = json.loads(path.read_text())
        return cls(parse_key_list(document["encryption_keys"]), document["index_key"].encode())

    def encrypt(self, plaintext: str, *, field: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.current_key_id].encrypt(nonce, plaintext.encode(), field.encode())
        return f"{self.current_key_id}:{_b64(nonce + sealed)}"

    def decrypt(self, envelope: str, *, field: str) -> str:
        key_id, _, payload = envelope.partition(":")
        aead = self._aead.get(key_id)
        if aead is None:
            raise PiiDecryptionError(f"no key {key_id!r} to decrypt {field}")
        raw = _unb64(payload)
        try:
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], field.encode()).decode()
        except InvalidTag:
            raise PiiDecryptionError(f"{field} does not decrypt (tampered or wrong key)") from None

    def key_id_of(self, envelope: str) -> str:
        return envelope.partition(":")[0]

    def reencrypt(self, envelope: str, *, field: str) -> str:
        """The value under the current key (unchanged when already under it)."""
        if self.key_id_of(envelope) == self.current_key_id:
            return envelope
        return self.encrypt(self.decrypt(envelope, field=field), field=field)

    def blind_index(self, value: str, *, field: str) -> str:
        message = field.encode() + b"\x00" + value.encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    def email_index(self, email: str) -> str:
        return self.blind_index(normalise_email(email), field="users.email")


def parse_key_list(text: str) -> list[tuple[str, bytes]]:
    """``"id1:base64,id2:base64"`` -> [(id, key bytes)], first one current."""
    keys: list[tuple[str, bytes]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        if not sep:
            raise ConfigurationError(
                "QUANTDESK_PII_ENCRYPTION_KEYS entries look like '<key id>:<base64 key>'"
            )
        try:
            keys.append((key_id.strip(), _unb64(encoded.strip())))
        except ValueError:
            raise ConfigurationError(
                f"QUANTDESK_PII_ENCRYPTION_KEYS: key {key_id!r} is not base64"
            ) from None
    return keys


def new_encryption_key_entry(key_id: str) -> str:
    """A fresh ``<key id>:<base64 key>`` entry (``quantdesk admin generate-keys``)."""
    return f"{key_id}:{_b64(AESGCM.generate_key(bit_length=256))}"
