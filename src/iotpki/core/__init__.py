"""The domain: authorities, profiles, policy, issuance, revocation, audit and events.

The core talks to the outside only through the ports in `iotpki.core.ports`.
"""
