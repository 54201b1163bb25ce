"""Composition root: builds the store, key ring and core services from settings."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from iotpki.core.audit_trail import AuditTrail
from iotpki.core.authorities import AuthorityService
from iotpki.core.clock import Clock, SystemClock
from iotpki.core.crl import CRLPublisher
from iotpki.core.crl_distribution import CRLDistribution
from iotpki.core.directory import CertificateDirectory
from iotpki.core.errors import ConfigurationError
from iotpki.core.issuance import IssuanceService
from iotpki.core.ocsp import OCSPResponder
from iotpki.core.ocsp_delegation import DelegatedResponders
from iotpki.core.profile import Profile, parse_profiles
from iotpki.core.revocation import RevocationService
from iotpki.core.urls import PublicURLs
from iotpki.keys.passphrase import read_passphrase
from iotpki.keys.ring import KeyRing
from iotpki.keys.software import SCHEME as SOFTWARE
from iotpki.keys.software import SoftwareKeyBackend
from iotpki.settings import Settings
from iotpki.store.database import Database, sqlite_url


def default_profiles_text() -> str:
    return resources.files("iotpki").joinpath("data/profiles.yaml").read_text()


def load_profiles(path: Path) -> dict[str, Profile]:
    """The data directory's profile file, or the packaged defaults if there is none."""
    text = path.read_text() if path.exists() else default_profiles_text()
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from exc
    return parse_profiles(document)


def open_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Database(settings.database_url or sqlite_url(settings.data_dir))


def build_key_ring(settings: Settings) -> KeyRing:
    software = SoftwareKeyBackend(
        settings.key_dir, read_passphrase(settings.data_dir), settings.allow_unencrypted_keys)
    return KeyRing({SOFTWARE: software}, default=SOFTWARE)


@dataclass
class PKI:
    """Everything a front end (CLI, servers, benchmarks) needs, wired together."""

    settings: Settings
    database: Database
    keys: KeyRing
    profiles: dict[str, Profile]
    authorities: AuthorityService
    issuance: IssuanceService
    revocation: RevocationService
    certificates: CertificateDirectory
    audit: AuditTrail
    crls: CRLPublisher
    ocsp: OCSPResponder
    crl_distribution: CRLDistribution
    clock: Clock

    def close(self) -> None:
        self.database.dispose()


def build_pki(settings: Settings, clock: Clock | None = None, migrate: bool = True) -> PKI:
    clock = clock or SystemClock()
    database = open_database(settings)
    if migrate:
        database.migrate()
    keys = build_key_ring(settings)
    profiles = load_profiles(settings.profiles_file)
    urls = PublicURLs(settings.public_url)
    uow = database.unit_of_work
    issuance = IssuanceService(uow, keys, profiles, urls, clock)
    responders = DelegatedResponders(uow, keys, issuance, clock)
    crls = CRLPublisher(uow, keys, urls, clock)
    return PKI(
        settings=settings, database=database, keys=keys, profiles=profiles,
        authorities=AuthorityService(uow, keys, urls, clock),
        issuance=issuance,
        revocation=RevocationService(uow, clock),
        certificates=CertificateDirectory(uow),
        audit=AuditTrail(uow),
        crls=crls,
        ocsp=OCSPResponder(uow, responders, clock),
        crl_distribution=CRLDistribution(uow, crls, clock),
        clock=clock,
    )


def install_default_profiles(settings: Settings) -> bool:
    """Copy the packaged profile file into the data directory unless one is there."""
    if settings.profiles_file.exists():
        return False
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("iotpki").joinpath("data/profiles.yaml")) as src:
        shutil.copyfile(src, settings.profiles_file)
    return True
