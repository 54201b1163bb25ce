"""SCEP (RFC 8894) codecs: the signed pkiMessage with its authenticated attributes (§3.2),
the pkcsPKIEnvelope (§3.2.2), the message contents (§3.3), CertRep (§3.3.2) and the
certs-only replies of GetCACert (§4.2). No I/O; used by the server adapter and by tests
that play a client."""
