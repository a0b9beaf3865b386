"""The CA-signature adapter: a doctor's electronic signature over a prescription's digest.

Real deployments sign through a licensed CA (医网信, 协同签名 and the like): the
doctor's key stays at the CA and a PIN (or the CA's app) unlocks each signature.
``PHARMACY_CA_SIGNER`` names the implementation: ``"sandbox"`` or a dotted path
to a class implementing :class:`CaSigner`. The sandbox really signs (ECDSA P-256
over SHA-256, an SM2-style curve signature; a real X.509 certificate per doctor
issued by a sandbox root) and fails like a CA does: no certificate, expired,
revoked, wrong PIN (counted, then locked). It refuses to run in production.

Errors are :class:`~apps.pharmacy.errors.PharmacyError` with ``pharmacy.ca_*`` codes."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.accounts.models import StaffProfile, User
from hub import crypto

from .errors import PharmacyCode, PharmacyError
from .models import CaCertificate, SandboxCaRoot

log = logging.getLogger(__name__)
PIN = re.compile(r"^\d{6}$")
ALGORITHM = "ECDSA-P256-SHA256"


@dataclass(frozen=True)
class Signature:
    """What a CA returns for one digest."""

    algorithm: str
    value: str  # base64 of the DER signature
    cert_serial: str
    signed_at: dt.datetime


@dataclass(frozen=True)
class CertificateInfo:
    serial: str
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    revoked: bool
    locked_until: dt.datetime | None


class CaSigner(Protocol):
    """One CA. ``sign`` raises ``PharmacyError`` (``pharmacy.ca_*``) on refusal and is
    called outside any transaction (a wrong PIN must stay counted)."""

    name: str

    def certificate(self, doctor: User) -> CertificateInfo | None:
        """The doctor's current certificate (the newest), or None."""
        ...

    def sign(self, doctor: User, digest: bytes, *, pin: str) -> Signature:
        """Sign a 32-byte SHA-256 digest with the doctor's key."""
        ...

    def verify(self, doctor: User, digest: bytes, signature: Signature) -> bool:
        """True when ``signature`` is ``doctor``'s signature of ``digest`` (the
        certificate is theirs), made while the certificate was valid and not revoked."""
        ...


def configured_signer_paths() -> list[str]:
    """The dotted path of the configured CA (for ``hub.outside``'s production check)."""
    name = settings.PHARMACY_CA_SIGNER
    if name == "sandbox":
        return ["apps.pharmacy.ca.SandboxCaSigner"]
    return [name] if name else []


def signer() -> CaSigner:
    """The configured CA. The sandbox never runs in production."""
    name = settings.PHARMACY_CA_SIGNER
    if name == "sandbox":
        if settings.PRODUCTION:
            log.error("PHARMACY_CA_SIGNER=sandbox refused in production")
            raise PharmacyError(PharmacyCode.CA_UNAVAILABLE)
        return SandboxCaSigner()
    if not name:
        raise PharmacyError(PharmacyCode.CA_UNAVAILABLE)
    cls: Any = import_string(name)
    return cls()


# --- the sandbox ------------------------------------------------------------------------

_ROOT_CONTEXT = "pharmacy_ca.root_key"
_KEY_CONTEXT = "pharmacy_ca.private_key"
ROOT_NAME = "互联网医院沙箱CA（测试用，不具法律效力）"


def _pem_key(key: ec.EllipticCurvePrivateKey, password: bytes | None) -> str:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


def _root() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    row = SandboxCaRoot.objects.filter(pk=1).first()
    if row is None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROOT_NAME)])
        now = timezone.now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        try:
            with transaction.atomic():
                row = SandboxCaRoot.objects.create(
                    pk=1,
                    certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                    private_key_enc=crypto.encrypt(_pem_key(key, None), context=_ROOT_CONTEXT),
                )
        except IntegrityError:  # made by a concurrent first use
            row = SandboxCaRoot.objects.get(pk=1)
    root_cert = x509.load_pem_x509_certificate(row.certificate_pem.encode())
    root_key = serialization.load_pem_private_key(
        crypto.decrypt(row.private_key_enc, context=_ROOT_CONTEXT).encode(), None
    )
    assert isinstance(root_key, ec.EllipticCurvePrivateKey)
    return root_cert, root_key


def _info(row: CaCertificate) -> CertificateInfo:
    return CertificateInfo(
        serial=row.serial,
        subject=row.subject,
        issuer=ROOT_NAME,
        not_before=row.not_before,
        not_after=row.not_after,
        revoked=row.revoked_at is not None,
        locked_until=row.locked_until,
    )


class SandboxCaSigner:
    name = "sandbox"
    sandbox = True  # refused in production (hub.outside, and signer() above)

    def _current(self, doctor: User) -> CaCertificate | None:
        return CaCertificate.objects.filter(doctor=doctor).order_by("-not_after", "-id").first()

    def certificate(self, doctor: User) -> CertificateInfo | None:
        row = self._current(doctor)
        return _info(row) if row else None

    def enrol(
        self, doctor: User, *, pin: str, valid_days: int = 365, now: dt.datetime | None = None
    ) -> CertificateInfo:
        """Issue a certificate and key for the doctor, the key locked by ``pin``
        (what a CA's enrolment does at its counter or in its app)."""
        if not PIN.match(pin):
            raise PharmacyError(PharmacyCode.CA_PIN_FORMAT)
        now = now or timezone.now()
        current = self._current(doctor)
        if current and current.revoked_at is None and current.not_after > now:
            raise PharmacyError(PharmacyCode.CA_ALREADY_ENROLLED)
        root_cert, root_key = _root()
        key = ec.generate_private_key(ec.SECP256R1())
        profile = StaffProfile.objects.filter(user=doctor).first()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, doctor.display_name or doctor.username)]
        if profile and profile.department:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, profile.department))
        attrs.append(x509.NameAttribute(NameOID.USER_ID, str(doctor.pk)))
        serial = x509.random_serial_number()
        not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=valid_days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(root_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        row = CaCertificate.objects.create(
            doctor=doctor,
            serial=format(serial, "x"),
            subject=", ".join(str(a.value) for a in attrs[:2]),
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            private_key_enc=crypto.encrypt(_pem_key(key, pin.encode()), context=_KEY_CONTEXT),
            not_before=not_before,
            not_after=not_after,
        )
        return _info(row)

    def revoke(self, doctor: User, *, reason: str = "key_compromise") -> None:
        CaCertificate.objects.filter(doctor=doctor, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoke_reason=reason[:64]
        )

    def sign(self, doctor: User, digest: bytes, *, pin: str) -> Signature:
        if len(digest) != 32:
            raise ValueError("a SHA-256 digest is 32 bytes")
        now = timezone.now()
        current = self._current(doctor)
        if current is None:
            raise PharmacyError(PharmacyCode.CA_NO_CERTIFICATE)
        if current.revoked_at is not None:
            raise PharmacyError(PharmacyCode.CA_CERT_REVOKED)
        if current.not_after <= now or current.not_before > now:
            raise PharmacyError(PharmacyCode.CA_CERT_EXPIRED, not_after=current.not_after.isoformat())
        if not PIN.match(pin):
            raise PharmacyError(PharmacyCode.CA_PIN_FORMAT)
        refusal: PharmacyError | None = None
        key: Any = None
        # The try is counted under the row lock and committed before the error is raised,
        # so concurrent guesses cannot outrun the limit (as the login throttle does).
        with transaction.atomic():
            row = CaCertificate.objects.select_for_update().get(pk=current.pk)
            if row.locked_until and row.locked_until > now:
                refusal = PharmacyError(PharmacyCode.CA_PIN_LOCKED, until=row.locked_until.isoformat())
            else:
                try:
                    pem = crypto.decrypt(row.private_key_enc, context=_KEY_CONTEXT).encode()
                    key = serialization.load_pem_private_key(pem, pin.encode())
                except ValueError:
                    key = None
                limit = settings.PHARMACY_CA_PIN_MAX_FAILURES
                if key is None:
                    row.pin_failures += 1
                    if row.pin_failures >= limit:
                        row.locked_until = now + dt.timedelta(minutes=settings.PHARMACY_CA_PIN_LOCK_MINUTES)
                        row.pin_failures = 0
                        refusal = PharmacyError(PharmacyCode.CA_PIN_LOCKED, until=row.locked_until.isoformat())
                    else:
                        refusal = PharmacyError(PharmacyCode.CA_PIN_WRONG, remaining=limit - row.pin_failures)
                    row.save(update_fields=["pin_failures", "locked_until"])
                elif row.pin_failures or row.locked_until:
                    row.pin_failures, row.locked_until = 0, None
                    row.save(update_fields=["pin_failures", "locked_until"])
        if refusal is not None:
            raise refusal
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        der = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return Signature(
            algorithm=ALGORITHM, value=base64.b64encode(der).decode(), cert_serial=current.serial, signed_at=now
        )

    def verify(self, doctor: User, digest: bytes, signature: Signature) -> bool:
        if signature.algorithm != ALGORITHM or len(digest) != 32:
            return False
        row = CaCertificate.objects.filter(serial=signature.cert_serial, doctor=doctor).first()
        if row is None:
            return False
        at = signature.signed_at
        if not (row.not_before <= at <= row.not_after) or (row.revoked_at is not None and row.revoked_at <= at):
            return False
        try:
            cert = x509.load_pem_x509_certificate(row.certificate_pem.encode())
            if format(cert.serial_number, "x") != row.serial:
                return False
            root_cert, _ = _root()
            issuer_key = root_cert.public_key()
            assert isinstance(issuer_key, ec.EllipticCurvePublicKey)
            assert cert.signature_hash_algorithm is not None
            # The certificate is the root's (a row edited in SQL fails here)...
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
            public = cert.public_key()
            assert isinstance(public, ec.EllipticCurvePublicKey)
            # ...and the signature is its holder's over exactly this digest.
            public.verify(base64.b64decode(signature.value), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        except (InvalidSignature, ValueError, AssertionError):
            return False
        return True
