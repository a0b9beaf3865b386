"""The cryptography the gateways use: RSA-SHA256 (PKCS#1 v1.5) signatures, AES-GCM
resource decryption, key loading, and the sandbox's key material.

All on ``cryptography``; no gateway SDK (docs/adr/0041-payment-providers.md)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey
PublicKey = rsa.RSAPublicKey


class DecryptError(Exception):
    pass


def _pem(text: str, kind: str) -> bytes:
    """A PEM block from PEM text or from the bare base64 the Alipay console shows."""
    text = text.strip()
    if "-----BEGIN" in text:
        return text.encode()
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    joined = "\n".join(lines)
    return f"-----BEGIN {kind}-----\n{joined}\n-----END {kind}-----\n".encode()


def load_private_key(text: str | bytes) -> PrivateKey:
    data = text if isinstance(text, bytes) else _pem(text, "PRIVATE KEY")
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is required")
    return key


def load_public_key(text: str | bytes) -> PublicKey:
    """An RSA public key from a PEM public key, a PEM certificate or bare base64 (SPKI)."""
    data = text if isinstance(text, bytes) else _pem(text, "PUBLIC KEY")
    key: object
    if b"BEGIN CERTIFICATE" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("an RSA public key is required")
    return key


def sign_sha256_rsa(key: PrivateKey, message: str | bytes) -> str:
    data = message.encode() if isinstance(message, str) else message
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify_sha256_rsa(key: PublicKey, message: str | bytes, signature: str) -> bool:
    data = message.encode() if isinstance(message, str) else message
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def aes_gcm_decrypt(key: bytes, nonce: str, associated_data: str, ciphertext_b64: str) -> bytes:
    """WeChat Pay's AEAD_AES_256_GCM: base64(ciphertext || 16-byte tag), text nonce and AAD."""
    try:
        data = base64.b64decode(ciphertext_b64, validate=True)
        return AESGCM(key).decrypt(nonce.encode(), data, associated_data.encode() if associated_data else None)
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise DecryptError(str(exc) or type(exc).__name__) from exc


def aes_gcm_encrypt(key: bytes, nonce: str, associated_data: str, plaintext: bytes) -> str:
    return base64.b64encode(AESGCM(key).encrypt(nonce.encode(), plaintext, associated_data.encode() or None)).decode()


def new_private_key() -> PrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def self_signed_certificate(key: PrivateKey, common_name: str) -> tuple[str, str]:
    """A certificate for ``key`` like the ones WeChat Pay issues: (PEM, serial as upper-case hex)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), format(cert.serial_number, "X")


def nonce_str(length: int = 32) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))
