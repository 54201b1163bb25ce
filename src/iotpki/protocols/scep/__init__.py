"""SCEP server (RFC 8894): a thin adapter over the core's endpoint enrollment."""
