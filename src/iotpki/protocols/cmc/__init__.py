"""CMC (RFC 5272/5273/5274): Full PKI Requests over EST (RFC 7030 §4.3) and plain HTTP."""
