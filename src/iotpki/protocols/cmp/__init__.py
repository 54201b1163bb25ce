"""CMP over HTTP (RFC 6712 / RFC 9811) for the Lightweight CMP profile (RFC 9483)."""
