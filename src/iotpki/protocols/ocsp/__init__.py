"""OCSP over HTTP (RFC 6960 Appendix A, RFC 5019 §5)."""
