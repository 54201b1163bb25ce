"""Composition root: builds the store, key ring and core services from settings (`build_pki`),
and the two applications `iotpki serve` runs (`http_app`, `https_app`). The listener
modules (`server.py`, `https_server.py`) only run them under uvicorn."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from iotpki.core.audit.trail import AuditTrail
from iotpki.core.ca.authority_service import AuthorityService
from iotpki.core.ca.directory import CertificateDirectory
from iotpki.core.ca.issuance import IssuanceService
from iotpki.core.ca.ports import Protected, Purpose
from iotpki.core.ca.profile import INFRASTRUCTURE_KINDS, Profile, parse_profiles
from iotpki.core.ca.service_certificates import ServiceCertificates
from iotpki.core.ca.urls import PublicURLs
from iotpki.core.clock import Clock, SystemClock
from iotpki.core.errors import ConfigurationError
from iotpki.core.integration.principal_service import PrincipalService
from iotpki.core.integration.webhook_service import WebhookDispatcher, WebhookService
from iotpki.core.keyring import SecretSealer
from iotpki.core.lifecycle.device_service import DeviceService
from iotpki.core.lifecycle.expiry import ExpiryMonitor
from iotpki.core.lifecycle.renewal_info import RenewalInfo
from iotpki.core.lifecycle.transitions import LifecycleService
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.ra.acme_keys import EABKeys
from iotpki.core.ra.approval import ApprovalLimits
from iotpki.core.ra.endpoints import Endpoints, parse_endpoints
from iotpki.core.ra.enrollment import EnrollmentService, ExternalRevocation, default_methods
from iotpki.core.ra.guessing import GuessLimits
from iotpki.core.ra.registration_service import RegistrationService
from iotpki.core.revocation.crl import CRLPublisher
from iotpki.core.revocation.crl_distribution import CRLDistribution
from iotpki.core.revocation.crl_shards import CRLShardBuilds
from iotpki.core.revocation.ocsp import OCSPResponder
from iotpki.core.revocation.service import RevocationService
from iotpki.core.supply_chain.manifests import ManifestService
from iotpki.core.supply_chain.organization_service import OrganizationService
from iotpki.keys.passphrase import read_passphrase
from iotpki.keys.ring import KeyBackend, KeyRing
from iotpki.keys.sealing import PassphraseSealer
from iotpki.keys.software import SCHEME as SOFTWARE
from iotpki.keys.software import SoftwareKeyBackend
from iotpki.protocols.rest.idempotency import IdempotencyKeys
from iotpki.protocols.webhook.sender import HTTPWebhookSender
from iotpki.settings import Settings, load_yaml
from iotpki.store.database import Database, private_directory, private_sqlite_files, sqlite_url
from iotpki.wire.errors import PKIError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from iotpki.agent.revocation import CRLCache
    from iotpki.core.ra.endpoint_enrollment import EndpointEnrollment
    from iotpki.core.ra.key_delivery import KeyDelivery
    from iotpki.protocols.acme.server import ACMEServer
    from iotpki.protocols.acme.validation import ValidationSettings
    from iotpki.protocols.cmc.server import CMCServer
    from iotpki.protocols.cmp.confirmation import ConfirmationTimeout
    from iotpki.protocols.cmp.server import CMPServer
    from iotpki.protocols.console.context import ConsoleServices
    from iotpki.protocols.rest.context import APIServices
    from iotpki.protocols.scep.server import SCEPServer


def default_profiles_text() -> str:
    return resources.files("iotpki").joinpath("data/profiles.yaml").read_text()


def load_profiles(path: Path) -> dict[str, Profile]:
    """The data directory's profile file, or the packaged defaults if there is none."""
    text = path.read_text() if path.exists() else default_profiles_text()
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from exc
    return with_service_profiles(parse_profiles(document))


def with_service_profiles(profiles: dict[str, Profile]) -> dict[str, Profile]:
    """A profile file written before the `key-delivery` or `scep-ra` service purpose existed
    lacks its profile: the packaged one serves until the file names its own."""
    missing = [p.value for p in (Purpose.KEY_DELIVERY, Purpose.SCEP_RA) if p.value not in profiles]
    if not missing:
        return profiles
    defaults = parse_profiles(load_yaml(default_profiles_text()))
    return profiles | {name: defaults[name] for name in missing}


def load_endpoints(path: Path) -> Endpoints:
    """The data directory's endpoint file, or the packaged defaults if there is none."""
    text = path.read_text() if path.exists() else (
        resources.files("iotpki").joinpath("data/endpoints.yaml").read_text())
    try:
        return parse_endpoints(load_yaml(text))
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from exc


def external_revocation(clock: Clock) -> ExternalRevocation:
    """Suppliers' CRLs, fetched from their distribution points and cached until nextUpdate."""

    @functools.cache
    def cache() -> CRLCache:
        from iotpki.agent.revocation import CRLCache  # urllib and ssl: only when one is fetched

        return CRLCache(now=clock.now)

    return lambda certificate, issuer: cache()(certificate, issuer).value


def database_exists(settings: Settings) -> bool:
    """Whether the settings point at an iotpki database, without creating anything."""
    url = settings.database_url or sqlite_url(settings.data_dir)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return False
    database = Database(url)
    try:
        return database.schema_revision() is not None
    finally:
        database.dispose()


def open_database(settings: Settings, group_commit: bool = False) -> Database:
    private_directory(settings.data_dir)
    if settings.database_url is None:
        private_sqlite_files(settings.data_dir)
    return Database(settings.database_url or sqlite_url(settings.data_dir),
                    group_commit=group_commit, read_url=settings.database_read_url,
                    read_max_lag=settings.database_read_max_lag)


def build_key_ring(settings: Settings) -> KeyRing:
    """Software keys always; a PKCS#11 backend when python-pkcs11 (the `hsm` extra) is there.
    Tokens are opened on first use, so a node without one starts as before."""
    backends: dict[str, KeyBackend] = {SOFTWARE: SoftwareKeyBackend(
        settings.key_dir, read_passphrase(settings.data_dir), settings.allow_unencrypted_keys)}
    pkcs11 = build_pkcs11_backend(settings)
    if pkcs11 is not None:
        backends["pkcs11"] = pkcs11
    if settings.key_backend not in backends:
        raise ConfigurationError(f"key backend {settings.key_backend} needs python-pkcs11: "
                                 "install iotpki[hsm]")
    return KeyRing(backends, default=settings.key_backend)


def build_pkcs11_backend(settings: Settings) -> KeyBackend | None:
    try:
        from iotpki.keys.pkcs11 import PKCS11KeyBackend
    except ImportError:  # python-pkcs11 is an optional extra
        return None
    try:
        return PKCS11KeyBackend(settings.pkcs11_module, settings.pkcs11_token)
    except PKIError as exc:
        raise ConfigurationError(f"IOTPKI_PKCS11_TOKEN: {exc}") from exc


class CMPParts(NamedTuple):
    server: CMPServer
    key_delivery: KeyDelivery
    confirmations: ConfirmationTimeout


@dataclass
class PKI:
    """Everything a front end (CLI, servers, benchmarks) needs, wired together."""

    settings: Settings
    database: Database
    keys: KeyRing
    profiles: dict[str, Profile]
    authorities: AuthorityService
    issuance: IssuanceService
    service_certificates: ServiceCertificates
    revocation: RevocationService
    certificates: CertificateDirectory
    # The API's listings and lookups: on the read replica when there is one (they may trail
    # the primary by its lag bound); `certificates` reads what this node just wrote.
    listings: CertificateDirectory
    audit: AuditTrail
    organizations: OrganizationService
    registrations: RegistrationService
    enrollment: EnrollmentService
    manifests: ManifestService
    crls: CRLPublisher
    ocsp: OCSPResponder
    crl_distribution: CRLDistribution
    crl_shards: CRLShardBuilds
    clock: Clock
    endpoints: Endpoints
    devices: DeviceService
    principals: PrincipalService
    idempotency: IdempotencyKeys
    lifecycle: LifecycleService
    webhooks: WebhookService
    webhook_dispatcher: WebhookDispatcher
    expiry: ExpiryMonitor
    acme_keys: EABKeys  # External Account Binding keys (ACME, RFC 8555 §7.3.4)
    renewal_info: RenewalInfo  # suggested renewal windows (ACME ARI, RFC 9773)
    # CMP (server, key delivery, certConf timeout) is built on first use: its ASN.1 modules
    # take longer to import than everything else, and most CLI commands never need them.
    _cmp_parts: Callable[[], CMPParts] = field(repr=False)

    @cached_property
    def _cmp(self) -> CMPParts:
        return self._cmp_parts()

    @property
    def cmp(self) -> CMPServer:
        return self._cmp.server

    @property
    def key_delivery(self) -> KeyDelivery:
        return self._cmp.key_delivery

    @property
    def cmp_confirmations(self) -> ConfirmationTimeout:
        return self._cmp.confirmations

    def close(self) -> None:
        self.database.dispose()


def build_sealer(settings: Settings) -> SecretSealer | None:
    """Seals one-time secrets under the CA key passphrase; none without a passphrase."""
    passphrase = read_passphrase(settings.data_dir)
    return PassphraseSealer(passphrase) if passphrase is not None else None


def build_lifecycle(settings: Settings, uow: UnitOfWorkFactory, registrations: RegistrationService,
                    profiles: dict[str, Profile], clock: Clock) -> LifecycleService:
    maintenance = settings.maintenance_profile
    if maintenance is not None and maintenance not in profiles:
        raise ConfigurationError(f"IOTPKI_MAINTENANCE_PROFILE names no profile: {maintenance!r}")
    return LifecycleService(uow, registrations, clock, maintenance)


def _renewal_grace(profiles: dict[str, Profile], name: str) -> timedelta:
    profile = profiles.get(name)
    return profile.renewal_grace if profile is not None else timedelta(0)


class _Infrastructure:
    """Whether a certificate is one of the service's own (never revoked by a tenant): by
    its profile's kind, or because it is this node's HTTPS certificate (the file `iotpki
    serve` issues into `<data-dir>/tls/server.pem`, re-read when it changes)."""

    def __init__(self, profiles: dict[str, Profile], tls_certificate: Path) -> None:
        self._kinds = frozenset(n for n, p in profiles.items() if p.kind in INFRASTRUCTURE_KINDS)
        self._tls = tls_certificate
        self._seen: tuple[float, str] | None = None

    def __call__(self) -> Protected:
        tls = self._tls_fingerprint()
        return Protected(self._kinds, frozenset({tls} if tls else ()))

    def _tls_fingerprint(self) -> str:
        try:
            mtime = self._tls.stat().st_mtime
        except OSError:
            return ""
        if self._seen is None or self._seen[0] != mtime:
            leaf = x509.load_pem_x509_certificate(self._tls.read_bytes())
            self._seen = (mtime, leaf.fingerprint(hashes.SHA256()).hex())
        return self._seen[1]


def node_name() -> str:
    """Who this process is among the nodes sharing the database (CRL shard build leases)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def build_pki(settings: Settings, clock: Clock | None = None, migrate: bool = True,
              group_commit: bool = False) -> PKI:
    """`group_commit`: the process's writers share transactions and COMMITs
    (`store.group_commit`): `iotpki serve` workers, where many requests write at once."""
    clock = clock or SystemClock()
    database = open_database(settings, group_commit)
    if migrate:
        database.migrate_if_needed()
    keys = build_key_ring(settings)
    profiles = load_profiles(settings.profiles_file)
    urls = PublicURLs(settings.public_url, settings.previous_public_urls)
    uow = database.unit_of_work
    reads = database.read_unit_of_work  # never takes SQLite's write lock
    replica = database.replica_unit_of_work  # the read replica while it is fresh enough
    issuance = IssuanceService(uow, keys, profiles, urls, clock)
    sealer = build_sealer(settings)
    registrations = RegistrationService(uow, profiles, clock, sealer, reads=reads)
    certificates = ServiceCertificates(uow, keys, issuance, clock)
    crls = CRLPublisher(uow, keys, urls, clock, settings.crl_policy, reads=replica)
    crl_distribution = CRLDistribution(replica, crls, clock)
    enrollment = EnrollmentService(uow, issuance, clock, default_methods(
        external_revocation(clock), grace=lambda name: _renewal_grace(profiles, name),
        needs_registration=lambda name: name not in profiles
        or profiles[name].previous_stage_needs_registration),
        guesses=GuessLimits(settings.secret_lock_after, settings.secret_guesses_per_minute),
        queue=ApprovalLimits(settings.approval_queue_cap,
                             settings.approval_submissions_per_minute),
        reads=reads)
    revocation = RevocationService(
        uow, clock, _Infrastructure(profiles, settings.data_dir / "tls" / "server.pem"),
        holder_revokes_hold=lambda name: name in profiles and profiles[name].holder_revokes_hold)
    # The operator revoked a service certificate: replaced at once (issue 15 item 7).
    revocation.on_infrastructure_revoked.append(certificates.replace_revoked)
    endpoints = load_endpoints(settings.data_dir / "endpoints.yaml")

    authorities = AuthorityService(uow, keys, urls, clock)
    directory = CertificateDirectory(reads)
    principals = PrincipalService(uow, clock, profiles)

    def cmp_parts() -> CMPParts:
        from iotpki.core.ra.failure_budget import FailureBudget
        from iotpki.core.ra.key_delivery import KeyDelivery
        from iotpki.core.ra.presented import PresentedIdentities
        from iotpki.core.ra.transaction_service import TransactionService
        from iotpki.protocols.cmp import throttle
        from iotpki.protocols.cmp.confirmation import ConfirmationTimeout
        from iotpki.protocols.cmp.general import GeneralMessages
        from iotpki.protocols.cmp.ports import CMPCore
        from iotpki.protocols.cmp.protection import CMPProtection
        from iotpki.protocols.cmp.server import CMPServer

        key_delivery = KeyDelivery(uow, profiles, certificates, sealer, clock)
        transactions = TransactionService(uow, reads)
        core = CMPCore(transactions, directory, authorities, registrations, enrollment,
                       revocation, PresentedIdentities(reads, clock), principals)
        mac_throttle = throttle.MACThrottle(FailureBudget(uow, throttle.LIMITS, throttle.WINDOW,
                                                          reads=reads))
        general = GeneralMessages(crls, crl_distribution, urls)
        server = CMPServer(core, general, CMPProtection(certificates), profiles,
                           endpoints, sealer, clock, mac_throttle,
                           check_after=settings.cmp_check_after, key_delivery=key_delivery)
        return CMPParts(server, key_delivery, ConfirmationTimeout(
            transactions, directory, revocation, clock,
            timedelta(seconds=settings.cmp_confirm_timeout)))

    return PKI(
        settings=settings, database=database, keys=keys, profiles=profiles,
        authorities=authorities,
        issuance=issuance,
        service_certificates=certificates,
        revocation=revocation,
        certificates=directory,
        listings=CertificateDirectory(replica),
        audit=AuditTrail(replica),
        organizations=OrganizationService(uow, clock),
        registrations=registrations,
        enrollment=enrollment,
        manifests=ManifestService(uow, certificates, registrations, clock),
        crls=crls,
        ocsp=OCSPResponder(replica, certificates, clock),
        crl_distribution=crl_distribution,
        crl_shards=CRLShardBuilds(uow, crls, clock, node_name(), reads=reads),
        clock=clock,
        endpoints=endpoints,
        devices=DeviceService(uow, clock),
        lifecycle=build_lifecycle(settings, uow, registrations, profiles, clock),
        webhooks=WebhookService(uow, sealer, clock),
        webhook_dispatcher=WebhookDispatcher(uow, sealer, HTTPWebhookSender(), clock),
        expiry=ExpiryMonitor(uow, profiles, clock),
        principals=principals,
        idempotency=IdempotencyKeys(uow, clock, sealer),
        acme_keys=EABKeys(uow, sealer, clock),
        renewal_info=RenewalInfo(uow, profiles, clock),
        _cmp_parts=cmp_parts,
    )


def build_cmc_server(pki: PKI) -> CMCServer:
    """CMC (RFC 5272) for EST's /fullcmc and the plain-HTTP /cmc: the endpoints' enrollment,
    manual approval, revocation, and the CA's CMC signing certificate."""
    from iotpki.core.ra.endpoint_enrollment import EndpointEnrollment
    from iotpki.protocols.cmc.server import CMCServer

    enrollment = EndpointEnrollment(pki.database.unit_of_work, pki.endpoints, pki.enrollment,
                                    pki.profiles, pki.clock)
    # The adapter itself only reads (registrations, certificates): never SQLite's write lock.
    reads = pki.database.read_unit_of_work
    return CMCServer(enrollment, pki.enrollment.approval, pki.revocation,
                     pki.service_certificates, reads, build_sealer(pki.settings), pki.profiles,
                     pki.clock, principals=pki.principals)


def install_default_profiles(settings: Settings) -> bool:
    """Copy the packaged profile and endpoint files into the data directory unless there."""
    private_directory(settings.data_dir)
    installed = False
    for name in ("profiles.yaml", "endpoints.yaml"):
        if not (settings.data_dir / name).exists():
            with resources.as_file(resources.files("iotpki").joinpath(f"data/{name}")) as src:
                shutil.copyfile(src, settings.data_dir / name)
            installed = installed or name == "profiles.yaml"
    return installed


# -- the applications of `iotpki serve` (frameworks imported only when one is built) ------------

def http_app(pki: PKI, background: bool = True) -> Starlette:
    """The plain-HTTP listener: OCSP, CRLs, CA certificates, CMP, SCEP (RFC 8894 §4.1: SCEP
    protects its messages itself and its clients speak plain HTTP), CMC (RFC 5273), health;
    while it serves,
    the node's background workers run (`iotpki.background`) unless `background` is False."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from iotpki.background import NotificationWorker, RevocationWorker
    from iotpki.protocols.cmc.routes import http_routes as cmc_routes
    from iotpki.protocols.cmp.routes import routes as cmp_routes
    from iotpki.protocols.crl.routes import routes as crl_routes
    from iotpki.protocols.health import health_routes
    from iotpki.protocols.ocsp.routes import routes as ocsp_routes
    from iotpki.protocols.query_guard import QueryGuard
    from iotpki.protocols.scep.routes import routes as scep_routes

    distribution = pki.crl_distribution
    workers: list[RevocationWorker | NotificationWorker] = [
        RevocationWorker(pki.ocsp, pki.crls, distribution,
                         lambda: pki.cmp_confirmations.expire(), shards=pki.crl_shards),
        NotificationWorker(pki.expiry.scan, pki.webhook_dispatcher.run_once,
                           scan_every=pki.settings.expiry_scan_seconds),
    ] if background else []

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            for worker in workers:
                worker.stop()
            pki.close()

    routes = [*ocsp_routes(pki.ocsp, pki.clock), *crl_routes(distribution, pki.clock),
              *cmp_routes(pki.cmp), *scep_routes(scep_server(pki)),
              *cmc_routes(build_cmc_server(pki)), *health_routes(pki.database.schema_revision)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(QueryGuard)])


def https_app(pki: PKI) -> Starlette:
    """The HTTPS listener: EST first (its Full PKI Requests, RFC 7030 §4.3, before the other
    operations; behind the settings' trusted proxies), ACME, the web console (`/console/`),
    everything else to the REST API (`/api/v1/...`, its own 404 problems, bodies capped by
    the settings)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount

    from iotpki.protocols.acme.routes import routes as acme_routes
    from iotpki.protocols.cmc.routes import est_routes as fullcmc_routes
    from iotpki.protocols.console.app import create_console
    from iotpki.protocols.est.routes import routes as est_routes
    from iotpki.protocols.query_guard import QueryGuard
    from iotpki.protocols.rest.app import create_api

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            pki.close()

    settings = pki.settings
    routes = [*fullcmc_routes(build_cmc_server(pki)),
              *est_routes(endpoint_enrollment(pki), settings.trusted_proxies),
              *acme_routes(acme_server(pki)),
              Mount("/console", app=create_console(console_services(pki))),
              Mount("", app=create_api(api_services(pki), settings.rest_bodies))]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(QueryGuard)])


def acme_validation(settings: Settings) -> ValidationSettings:
    from iotpki.protocols.acme.validation import ValidationSettings

    resolver = None
    if settings.acme_resolver:
        host, _, port = settings.acme_resolver.rpartition(":")
        resolver = (host or settings.acme_resolver, int(port or 53))
    return ValidationSettings(settings.acme_http_port, settings.acme_tls_port, resolver,
                              settings.acme_connect_address)


def acme_server(pki: PKI, validation: ValidationSettings | None = None) -> ACMEServer:
    """The ACME server (RFC 8555) with its resources and challenge validators."""
    from iotpki.core.ra.acme_state import ACMEState
    from iotpki.protocols.acme.accounts import ACMEAccounts
    from iotpki.protocols.acme.ari import ACMERenewalInfo
    from iotpki.protocols.acme.attest import DeviceAttest01
    from iotpki.protocols.acme.certificates import ACMECertificates
    from iotpki.protocols.acme.dns01 import DNS01, DNSClient
    from iotpki.protocols.acme.orders import ACMELimits, ACMEOrders
    from iotpki.protocols.acme.server import ACMEServer
    from iotpki.protocols.acme.tls_alpn import TLSALPN01
    from iotpki.protocols.acme.validation import HTTP01, Validator, system_address
    from iotpki.wire.acme.attestation import CurrentCertificateFormat, PreviousStageFormat

    settings = pki.settings
    validation = validation or acme_validation(settings)
    state = ACMEState(pki.database.unit_of_work, pki.clock, pki.database.read_unit_of_work)
    server = ACMEServer(state, pki.endpoints, pki.clock)
    ACMEAccounts(server, pki.acme_keys, pki.clock)
    dns = DNSClient(validation.resolver, validation.timeout)
    resolve = dns.resolve if validation.resolver else None
    validators: dict[str, Validator] = {
        "http-01": HTTP01(validation, resolve), "dns-01": DNS01(dns),
        "tls-alpn-01": TLSALPN01(validation, resolve or system_address),
        "device-attest-01": DeviceAttest01({
            PreviousStageFormat.name: PreviousStageFormat(),
            CurrentCertificateFormat.name: CurrentCertificateFormat()}, pki.enrollment)}
    ACMEOrders(server, pki.issuance, validators, pki.clock,
               ACMELimits(settings.acme_orders_per_hour,
                          settings.acme_organization_orders_per_hour), pki.enrollment)
    ACMECertificates(server, pki.certificates, pki.revocation, pki.clock)
    ACMERenewalInfo(server, pki.renewal_info)
    return server


def scep_server(pki: PKI) -> SCEPServer:
    from iotpki.core.ra.endpoint_enrollment import EndpointEnrollment
    from iotpki.core.ra.transaction_service import TransactionService
    from iotpki.protocols.scep.server import SCEPServer

    endpoints = EndpointEnrollment(pki.database.unit_of_work, pki.endpoints, pki.enrollment,
                                   pki.profiles, pki.clock)
    transactions = TransactionService(pki.database.unit_of_work,
                                      pki.database.read_unit_of_work)
    return SCEPServer(endpoints, pki.service_certificates, pki.enrollment.approval.poll,
                      pki.crl_distribution.current, transactions, pki.certificates, pki.clock)


def endpoint_enrollment(pki: PKI) -> EndpointEnrollment:
    from iotpki.core.ra.endpoint_enrollment import EndpointEnrollment

    return EndpointEnrollment(pki.database.unit_of_work, pki.endpoints, pki.enrollment,
                              pki.profiles, pki.clock, pki.key_delivery)


def api_services(pki: PKI) -> APIServices:
    from iotpki.protocols.rest.context import APIServices

    return APIServices(
        principals=pki.principals, idempotency=pki.idempotency, authorities=pki.authorities,
        organizations=pki.organizations, profiles=pki.profiles, registrations=pki.registrations,
        manifests=pki.manifests, certificates=pki.listings, revocation=pki.revocation,
        audit=pki.audit, devices=pki.devices, lifecycle=pki.lifecycle, acme_keys=pki.acme_keys)


def console_services(pki: PKI) -> ConsoleServices:
    from iotpki.core.integration.console_session import ConsoleSessions
    from iotpki.core.lifecycle.device_inventory import DeviceInventory
    from iotpki.core.lifecycle.fleet_overview import FleetOverview
    from iotpki.core.lifecycle.posture import PostureChecks
    from iotpki.protocols.console.context import ConsoleServices

    # The console's screens read from the read replica when there is one (they may trail the
    # primary by its lag bound, docs/operations.md); sessions and actions use the primary.
    replica = pki.database.replica_unit_of_work
    return ConsoleServices(
        sessions=ConsoleSessions(pki.database.unit_of_work, pki.clock),
        principals=pki.principals,
        fleet=FleetOverview(pki.database.snapshot_unit_of_work, pki.clock),
        authorities=pki.authorities, organizations=pki.organizations, profiles=pki.profiles,
        certificates=pki.listings, service_certificates=pki.service_certificates,
        revocation=pki.revocation, devices=pki.devices,
        inventory=DeviceInventory(replica),
        lifecycle=pki.lifecycle, approval=pki.enrollment.approval, ocsp=pki.ocsp,
        crls=pki.crls, audit=pki.audit, clock=pki.clock,
        webhooks=pki.webhooks,
        posture=PostureChecks(replica, pki.clock, pki.profiles),
        registrations=pki.registrations, endpoints=pki.endpoints, manifests=pki.manifests,
        origins=frozenset(pki.settings.console_origins))
