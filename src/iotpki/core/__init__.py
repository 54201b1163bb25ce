"""The domain: authorities, profiles, policy, issuance, revocation, audit and events.

The core talks to the outside only through ports: the unit of work (`iotpki.core.ports`),
each subpackage's repositories (`<subpackage>/ports.py`), the key ports
(`iotpki.core.keyring`) and the event outbox (`iotpki.core.events`).
"""
