"""Debian's ACME clients against our server over HTTPS, with our root trusted: certbot
(REQUESTS_CA_BUNDLE) and lego (LEGO_CA_CERTIFICATES). Accounts with External Account
Binding bound to OperatorCo, names inside its operational domain, http-01 (both clients'
standalone solvers), dns-01 (RFC 2136 updates to a real Knot DNS server), tls-alpn-01
(lego), renewal and revocation (RFC 8555 §7.3.4, §7.4, §7.6, §8.3, §8.4; RFC 8737)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ra.acme_state import ACMEState
from iotpki.wire.acme.messages import ari_certificate_id
from iotpki.wire.keys import generate_private_key
from tests.acme.client import ACMEClient
from tests.acme.knot import ALGORITHM, KEY_NAME
from tests.acme.peers import DOMAIN, ACMEPeers, acme_server, require
from tests.acme.test_device_attest import make_sensor

__all__ = ["acme_server"]


# HMAC keys go as --option=value: a base64url key may begin with "-", which argparse would
# take for an option.


def certbot(peers: ACMEPeers, home: Path, *arguments: str,
            label: str = "operations") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(peers.root), "HOME": str(home)}
    command = [require("certbot"), *arguments, "--non-interactive", "--server", peers.url(label),
               "--config-dir", str(home / "config"), "--work-dir", str(home / "work"),
               "--logs-dir", str(home / "logs")]
    return peers.run(command, env)


def lego(peers: ACMEPeers, home: Path, *arguments: str, label: str = "operations",
         timeout: float = 180) -> subprocess.CompletedProcess[str]:
    key_id, hmac_key = peers.eab()
    env = {**os.environ, "LEGO_CA_CERTIFICATES": str(peers.root), "HOME": str(home),
           "RFC2136_NAMESERVER": f"127.0.0.1:{peers.dns_port}",
           "RFC2136_TSIG_KEY": f"{KEY_NAME}.", "RFC2136_TSIG_ALGORITHM": f"{ALGORITHM}.",
           "RFC2136_TSIG_SECRET": peers.knot.secret, "RFC2136_PROPAGATION_TIMEOUT": "30",
           "RFC2136_POLLING_INTERVAL": "1", "RFC2136_TTL": "5"}
    command = [require("lego"), "--server", peers.url(label), "--email", "ops@operator.example",
               "--accept-tos", "--eab", "--kid", key_id, f"--hmac={hmac_key}",
               "--path", str(home / "lego"), "--key-type", "ec256", *arguments]
    return peers.run(command, env, timeout)


def leaf_of(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def dns_names(certificate: x509.Certificate) -> list[str]:
    return certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def status_of(peers: ACMEPeers, certificate: x509.Certificate) -> CertificateStatus:
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    return peers.pki.certificates.get_by_fingerprint(fingerprint).status


# -- certbot ---------------------------------------------------------------------------------

def test_certbot_eab_http01_and_revocation(acme_server: ACMEPeers, tmp_path: Path) -> None:
    peers = acme_server
    key_id, hmac_key = peers.eab()
    name = f"certbot.{DOMAIN}"
    issued = certbot(peers, tmp_path, "certonly", "--standalone", "--agree-tos",
                     "--email", "ops@operator.example", "--eab-kid", key_id,
                     f"--eab-hmac-key={hmac_key}", "--http-01-port", str(peers.http01_port),
                     "--http-01-address", "127.0.0.1", "-d", name, "--key-type", "ecdsa")
    assert issued.returncode == 0, issued.stdout + issued.stderr
    live = tmp_path / "config" / "live" / name
    chain = x509.load_pem_x509_certificates((live / "fullchain.pem").read_bytes())
    assert dns_names(chain[0]) == [name]
    assert chain[1].subject == peers.pki.authorities.get("operatorco-operations").certificate.subject
    revoked = certbot(peers, tmp_path, "revoke", "--cert-path", str(live / "cert.pem"),
                      "--reason", "keycompromise", "--no-delete-after-revoke")
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    fingerprint = chain[0].fingerprint(hashes.SHA256()).hex()
    record = peers.pki.certificates.get_by_fingerprint(fingerprint)
    assert record.status is CertificateStatus.REVOKED
    assert record.revocation_reason == "keyCompromise"


def test_certbot_dns01_through_rfc2136(acme_server: ACMEPeers, tmp_path: Path) -> None:
    peers = acme_server
    key_id, hmac_key = peers.eab()
    credentials = tmp_path / "rfc2136.ini"
    credentials.write_text(
        f"dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {peers.dns_port}\n"
        f"dns_rfc2136_name = {KEY_NAME}\ndns_rfc2136_secret = {peers.knot.secret}\n"
        f"dns_rfc2136_algorithm = {ALGORITHM.upper()}\n")
    credentials.chmod(0o600)
    name = f"dns.certbot.{DOMAIN}"
    issued = certbot(peers, tmp_path, "certonly", "--dns-rfc2136", "--dns-rfc2136-credentials",
                     str(credentials), "--dns-rfc2136-propagation-seconds", "1", "--agree-tos",
                     "--email", "ops@operator.example", "--eab-kid", key_id,
                     f"--eab-hmac-key={hmac_key}", "-d", name)
    assert issued.returncode == 0, issued.stdout + issued.stderr
    assert dns_names(leaf_of(tmp_path / "config" / "live" / name / "cert.pem")) == [name]


def test_certbot_without_eab_stops_where_the_directory_requires_it(acme_server: ACMEPeers,
                                                                    tmp_path: Path) -> None:
    """§7.1.1 meta.externalAccountRequired: certbot reads it and asks for EAB itself."""
    answer = certbot(acme_server, tmp_path, "register", "--agree-tos", "--email",
                     "ops@operator.example")
    assert answer.returncode != 0
    assert "--eab-kid" in answer.stdout + answer.stderr


# -- lego ------------------------------------------------------------------------------------

def test_lego_http01_renewal_and_revocation(acme_server: ACMEPeers, tmp_path: Path) -> None:
    peers = acme_server
    name = f"lego.{DOMAIN}"
    solver = ["--http", "--http.port", f"127.0.0.1:{peers.http01_port}", "--domains", name]
    issued = lego(peers, tmp_path, *solver, "run")
    assert issued.returncode == 0, issued.stdout + issued.stderr
    path = tmp_path / "lego" / "certificates" / f"{name}.crt"
    first = leaf_of(path)
    assert dns_names(first) == [name]
    # The profile's validity is 397 days: renew when fewer than 400 remain, i.e. now.
    renewed = lego(peers, tmp_path, *solver, "renew", "--days", "400",
                   "--no-random-sleep", timeout=60)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = leaf_of(path)
    assert second.serial_number != first.serial_number
    revoked = lego(peers, tmp_path, "--domains", name, "revoke", "--reason", "4")
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    assert status_of(peers, second) is CertificateStatus.REVOKED


def test_lego_dns01_through_rfc2136(acme_server: ACMEPeers, tmp_path: Path) -> None:
    peers = acme_server
    name = "dns.lego.peers.example"
    # The zone's NS names no reachable port: lego's own propagation check is off.
    issued = lego(peers, tmp_path, "--dns", "rfc2136", "--dns.resolvers",
                  f"127.0.0.1:{peers.dns_port}", "--dns.disable-cp", "--domains", name, "run",
                  label="")
    assert issued.returncode == 0, issued.stdout + issued.stderr
    assert dns_names(leaf_of(tmp_path / "lego" / "certificates" / f"{name}.crt")) == [name]


def test_lego_tls_alpn01(acme_server: ACMEPeers, tmp_path: Path) -> None:
    peers = acme_server
    name = f"tls.{DOMAIN}"
    issued = lego(peers, tmp_path, "--tls", "--tls.port", f"127.0.0.1:{peers.tls_port}",
                  "--domains", name, "run")
    assert issued.returncode == 0, issued.stdout + issued.stderr
    assert dns_names(leaf_of(tmp_path / "lego" / "certificates" / f"{name}.crt")) == [name]


# -- challenge failures against the real server (our own client over HTTPS) ------------------

def publish_txt(peers: ACMEPeers, name: str, value: str) -> None:
    """An RFC 2136 update signed with the zone's TSIG key (knsupdate, Knot's own tool)."""
    script = (f"server 127.0.0.1 {peers.dns_port}\nzone {DOMAIN}.\n"
              f'update add {name}. 5 TXT "{value}"\nsend\n')
    done = subprocess.run([require("knsupdate"), "-y",
                           f"{ALGORITHM}:{KEY_NAME}:{peers.knot.secret}"],
                          input=script, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_dns01_and_tls_alpn01_failures_are_invalid_and_audited(acme_server: ACMEPeers) -> None:
    """RFC 8555 §8.4: a TXT record with another digest is incorrectResponse, no record is
    dns; RFC 8737: nobody answering TLS on the port is tls. Nothing is issued."""
    peers = acme_server
    mark = peers.mark()
    with httpx.Client(verify=ssl.create_default_context(cafile=peers.root), timeout=60) as http:
        client = ACMEClient(http, peers.url("operations"), generate_private_key("ec-p256"))
        key_id, hmac_key = peers.eab_raw()
        assert client.new_account((key_id, hmac_key)).status_code == 201
        wrong, missing, tls = (f"{n}.fail.{DOMAIN}" for n in ("wrong", "missing", "tls"))
        publish_txt(peers, f"_acme-challenge.{wrong}", "not-the-digest")
        kinds = {}
        for name, kind in ((wrong, "dns-01"), (missing, "dns-01"), (tls, "tls-alpn-01")):
            order = client.new_order(name).json()
            challenge = client.challenge(order, kind)[0]
            answer = client.post(challenge["url"], {}).json()
            assert answer["status"] == "invalid", answer
            kinds[name] = answer["error"]["type"].rsplit(":", 1)[1]
    assert kinds == {wrong: "incorrectResponse", missing: "dns", tls: "tls"}
    refused = [e.record for e in peers.pki.audit.entries(after=mark, limit=None)
               if e.record.action == "acme.challenge"]
    assert sorted(r.details["problem"] for r in refused) == ["dns", "incorrectResponse", "tls"]
    assert all(r.outcome == "refused" for r in refused)


# -- our device agent ------------------------------------------------------------------------

def agent(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iotpki.agent.cli", "--config", str(config),
                           "--json", *args], capture_output=True, text=True, timeout=120)


def test_iotpki_agent_over_acme_https(acme_server: ACMEPeers, tmp_path: Path) -> None:
    """`iotpki-agent` (protocol acme) as a device runs it, over real HTTPS: the first contact
    before any anchor (the issued chain believed through the pinned root), device-attest-01
    with the previous-stage identity, renewalInfo asked by `run --once`, and a renewal (in a
    new process: the account found again by its key) with `replaces`."""
    peers = acme_server
    sensor = make_sensor(peers, "sensor-peer-0001")  # the PKI is all it uses
    (tmp_path / "device.pem").write_bytes(b"".join(
        x509.load_der_x509_certificate(c).public_bytes(Encoding.PEM) for c in sensor.chain))
    (tmp_path / "device.key").write_bytes(sensor.key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    key_id, hmac_key = peers.eab(label="devices")
    root = x509.load_pem_x509_certificate(peers.root.read_bytes())
    config = tmp_path / "agent.toml"
    config.write_text(f'''directory = "agent"
protocol = "acme"
url = "{peers.url("devices")}"
trust_anchors = ["{root.fingerprint(hashes.SHA256()).hex()}"]
subject = "CN={sensor.name}"
[enrollment]
previous_certificate = "device.pem"
previous_key = "device.key"
eab_key_id = "{key_id}"
eab_hmac = "{hmac_key}"
''')
    enrolled = agent(config, "enroll")
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    first = leaf_of(tmp_path / "agent" / "current" / "chain.pem")
    assert (tmp_path / "agent" / "acme-account.pem").stat().st_mode & 0o077 == 0
    once = agent(config, "run", "--once")
    assert once.returncode == 0, once.stdout + once.stderr
    assert json.loads(once.stdout)["action"] == "wait", once.stdout
    state = json.loads((tmp_path / "agent" / "state.json").read_text())  # RFC 9773 §4.2
    start, end = (datetime.fromisoformat(state[k]) for k in ("window_start", "window_end"))
    assert first.not_valid_before_utc < start < end < first.not_valid_after_utc
    renewed = agent(config, "renew")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = leaf_of(tmp_path / "agent" / "current" / "chain.pem")
    assert second.serial_number != first.serial_number and second.subject == first.subject
    order = ACMEState(peers.pki.database.unit_of_work, peers.pki.clock).order_for_certificate(
        second.fingerprint(hashes.SHA256()).hex())
    assert order is not None and order.replaces == ari_certificate_id(first)
