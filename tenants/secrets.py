"""Encryption of secrets at rest (IdP client secrets, signing keys): AES-256-GCM.

The key is derived from the service's secret key with HKDF, one derived key per purpose,
so one leaked ciphertext tells nothing about another purpose's and rotating the secret
key is the single knob operators have.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretDecryptionError(RuntimeError):
    """A stored secret cannot be decrypted: the secret key changed or the data is corrupt."""


class SecretBox:
    VERSION = b"v1"

    def __init__(self, secret_key: str, purpose: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"tenantry", info=purpose.encode()
        ).derive(secret_key.encode())
        self._aead = AESGCM(key)
        self._aad = purpose.encode()

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self._aad)
        return (self.VERSION + b"." + base64.urlsafe_b64encode(nonce + sealed)).decode()

    def decrypt(self, token: str) -> str:
        version, _, body = token.encode().partition(b".")
        if version != self.VERSION:
            raise SecretDecryptionError("unknown secret format")
        raw = base64.urlsafe_b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], self._aad).decode()
        except InvalidTag as exc:
            raise SecretDecryptionError(
                "the secret cannot be decrypted with this secret key"
            ) from exc
