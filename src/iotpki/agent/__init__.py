"""The device side: key store, EST and CMP clients, renewal scheduler, hooks, peer checks
with cached OCSP/CRL (imports iotpki.wire only; docs/agent.md). `iotpki-agent` is
`iotpki.agent.cli:main`."""
