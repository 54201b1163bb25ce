"""Fixtures of the SCEP tests: one real `iotpki serve` per module and database, the Go SCEP
client (`scepclient`, Debian package `scep`), certmonger's `scep-submit`, and a Python
client built on `iotpki.wire.scep` for the messages those peers do not send.

Endpoints of the module's server (`endpoints.yaml`): the packaged ones, plus
`approval` (one-time secret, else manual approval) and `legacy` (DES/3DES and SHA-1
allowed, for the Go client 2.1.0 that encrypts with DES; profile `service`, which admits the
C attribute the Go client always sends)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, NameOID

from iotpki.app import PKI
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.names import parse_subject
from iotpki.wire.scep.attributes import MessageType
from iotpki.wire.scep.envelope import AES128, ContentCipher, encode_envelope, open_envelope
from iotpki.wire.scep.message import (
    Attributes,
    PKIMessage,
    decode_pki_message,
    encode_pki_message,
    verify_pki_message,
)
from tests.conftest import last_audit_seq, shared_demo_pki
from tests.servers import ServerProcess, free_port

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
DOMAIN_SAN = x509.UniformResourceIdentifier(f"urn:iotpki:domain:{DOMAIN}")
SCEP_SUBMIT = next((p for p in ("/usr/lib/certmonger/scep-submit",
                                "/usr/libexec/certmonger/scep-submit") if os.path.exists(p)),
                   None)
EXTRA_ENDPOINTS = {
    "approval": {"authority": CA, "profile": "operational",
                 "methods": ["one-time-secret", "manual-approval"]},
    "legacy": {"authority": CA, "profile": "service", "methods": ["one-time-secret"],
               "legacy_algorithms": True},
}


def require(tool: str | None, name: str) -> str:
    if tool is None or shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing (scripts/system-packages.sh installs it)")
        pytest.skip(f"{name} is not installed")
    return tool


def self_signed(key: Any, subject: x509.Name) -> x509.Certificate:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))


def csr_der(key: rsa.RSAPrivateKey, subject: str, challenge: str | None,
            sans: list[x509.GeneralName] | None = None) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(parse_subject(subject))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class Requester:
    """A SCEP client identity: its RSA key and the certificate it signs messages with."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def new(cls, cn: str = "scep-client") -> Requester:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key, self_signed(key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])))

    def transaction_id(self) -> str:
        """RFC 8894 §3.2.1.1: a hash of the public key (hex)."""
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).hexdigest()

    def message(self, kind: MessageType | int, content: bytes, ra: x509.Certificate,
                transaction_id: str | None = None, nonce: bytes | None = None,
                cipher: ContentCipher = AES128,
                digest: hashes.HashAlgorithm | None = None) -> tuple[bytes, bytes]:
        """(pkiMessage, senderNonce)."""
        nonce = nonce or os.urandom(16)
        envelope = encode_envelope(content, ra, cipher)
        attributes = Attributes(int(kind), transaction_id or self.transaction_id(), nonce)
        return encode_pki_message(attributes, envelope, self.key, self.certificate,
                                  [self.certificate], datetime.now(UTC), digest), nonce

    def open(self, reply: bytes, ra: x509.Certificate) -> tuple[PKIMessage, bytes | None]:
        """The CertRep, checked, and its decrypted content (None without envelope)."""
        message = decode_pki_message(reply)
        verify_pki_message(message)
        assert message.signer == ra
        if message.content is None:
            return message, None
        return message, open_envelope(message.content, self.certificate, self.key).content


@dataclass
class Scene:
    pki: PKI
    server: ServerProcess
    dir: Path
    audit_after: int = 0

    def url(self, label: str = "") -> str:
        return f"{self.server.url}/scep" + (f"/{label}" if label else "")

    def get(self, label: str, query: str) -> tuple[int, str, bytes]:
        return fetch(f"{self.url(label)}?{query}")

    def post(self, label: str, body: bytes) -> tuple[int, str, bytes]:
        return fetch(f"{self.url(label)}?operation=PKIOperation", body)

    def ca_certificates(self, label: str = "") -> list[x509.Certificate]:
        status, _, body = self.get(label, "operation=GetCACert")
        assert status == 200
        return load_certificates(body)

    def ra(self, label: str = "") -> x509.Certificate:
        """The certificate that is no CA (RFC 8894 §2.1.1: the RA's)."""
        return next(c for c in self.ca_certificates(label)
                    if not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)

    def secret_registration(self, subject: str = "CN=sensor-7", profile: str = "operational",
                            **changes: Any) -> str:
        """A one-time-secret registration; the SCEP challengePassword `id:secret`."""
        spec = RegistrationSpec("operatorco", CA, profile,
                                RegistrationMethod.ONE_TIME_SECRET,
                                subject=parse_subject(subject), domain=DOMAIN, **changes)
        created = self.pki.registrations.create(spec, "operatorco:crm")
        assert created.secret is not None
        return f"{created.registration.id}:{created.secret}"

    def audit(self, action: str) -> list[dict[str, object]]:
        return [{"outcome": e.record.outcome, "actor": e.record.actor, **e.record.details}
                for e in self.pki.audit.entries(after=self.audit_after, limit=None)
                if e.record.action == action]

    def refusals(self) -> list[dict[str, object]]:
        return [r for action in ("scep.request", "enrollment.authorize", "certificate.issue")
                for r in self.audit(action) if r["outcome"] == "refused"]

    def issued_here(self) -> int:
        """Operational certificates issued since the test started (service certificates the
        server makes in the background are not counted)."""
        return sum(1 for e in self.pki.audit.entries(after=self.audit_after, limit=None)
                   if e.record.action == "certificate.issue" and e.record.outcome == "success"
                   and e.record.details.get("profile") in ("operational", "service"))

    def for_test(self, directory: Path) -> Scene:
        return replace(self, dir=directory, audit_after=last_audit_seq(self.pki))


def load_certificates(der: bytes) -> list[x509.Certificate]:
    """The certificates of a certs-only SignedData in their order (the SET OF of a SCEP
    answer is in the order clients rely on, not sorted as DER: `cryptography` warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pkcs7.load_der_pkcs7_certificates(der)


def fetch(url: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    headers = {"Content-Type": "application/x-pki-message"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def write_endpoints(data_dir: Path) -> None:
    document = yaml.safe_load(resources.files("iotpki").joinpath("data/endpoints.yaml")
                              .read_text())
    document["scep"].update(EXTRA_ENDPOINTS)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "endpoints.yaml").write_text(yaml.safe_dump(document))


@pytest.fixture(scope="module")
def scep_server(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[Scene]:
    """The module's demo PKI behind one `iotpki serve`."""
    directory = tmp_path_factory.mktemp("scep")
    port = free_port()
    with shared_demo_pki(request, directory, module_database_url,
                         f"http://127.0.0.1:{port}") as pki:
        write_endpoints(pki.settings.data_dir)
        running = ServerProcess(pki.settings, port).start()
        try:
            yield Scene(pki, running, directory)
        finally:
            running.stop()


@pytest.fixture
def scep(scep_server: Scene, tmp_path: Path) -> Scene:
    return scep_server.for_test(tmp_path)


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done
