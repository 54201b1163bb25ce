"""Build an agent from its configuration (the agent's own small composition root)."""

from __future__ import annotations

import random

from iotpki.agent.acme_client import ACMEEnrollment
from iotpki.agent.cmp_client import CMPClient
from iotpki.agent.config import AgentConfig
from iotpki.agent.device import (
    STATE_FILE,
    Agent,
    CASource,
    EnrollmentClient,
    RenewalInfoSource,
)
from iotpki.agent.est_client import ESTClient
from iotpki.agent.keystore import FileKeyStore, Identity, KeyStore
from iotpki.agent.renewal import Clock, RenewalScheduler, system_clock
from iotpki.agent.transport import HTTPTransport, Transport
from iotpki.agent.trust import Trust


def build_agent(config: AgentConfig, clock: Clock = system_clock,
                rng: random.Random | None = None, store: KeyStore | None = None,
                transport: Transport | None = None,
                schedule_clock: Clock | None = None) -> Agent:
    """`clock` is the real time the protocols need (CMP messageTime, path validation);
    `schedule_clock`, if given, is the scheduler's (the fleet simulator compresses time)."""
    transport = transport or HTTPTransport()
    files = FileKeyStore(config.directory)
    chosen = store or (_token_store(config) if config.key_uri else files)
    trust = Trust(config.trust_anchors, files.anchors())
    client: EnrollmentClient
    ca_source: CASource | None
    renewal_info: RenewalInfoSource | None = None
    if config.protocol == "acme":
        acme = ACMEEnrollment(config.url, trust, clock, config.directory, transport,
                              config.eab)
        client, ca_source, renewal_info = acme, None, acme.renewal_info
    elif config.protocol == "est":
        est = ESTClient(config.url, trust, clock, config.label, transport)
        client, ca_source = est, lambda _identity: est.ca_certs()
    else:
        cmp = CMPClient(config.url, trust, clock, transport)

        def ca_source(identity: Identity | None) -> list:  # type: ignore[type-arg]
            return cmp.ca_certs(identity) if identity is not None else []

        client = cmp
    scheduler = RenewalScheduler(config.policy, schedule_clock or clock, rng)
    return Agent(config, chosen, trust, client, scheduler, ca_source,
                 state_path=config.directory / STATE_FILE, close=transport.close,
                 renewal_info=renewal_info)


def _token_store(config: AgentConfig) -> KeyStore:
    # Imported here: python-pkcs11 (the `hsm` extra) is needed only by devices with a token.
    from iotpki.agent.token_store import TokenKeyStore

    assert config.key_uri is not None
    return TokenKeyStore(config.directory, config.key_uri, config.pkcs11_module)
