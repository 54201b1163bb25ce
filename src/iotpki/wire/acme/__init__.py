"""ACME codecs (RFC 8555): JWS/JWK (`jws`) and message payloads (`messages`); no I/O."""
