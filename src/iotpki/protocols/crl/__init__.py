"""CRLs and CA certificates over HTTP (RFC 5280 §4.2.1.13, §4.2.2.1)."""
