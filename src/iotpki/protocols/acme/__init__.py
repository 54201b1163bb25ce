"""ACME server (RFC 8555, RFC 8737, RFC 9773): a thin adapter over the core (docs/acme.md)."""
