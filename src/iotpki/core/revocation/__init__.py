"""Revocation: revoking, holding and releasing, CRL publication and OCSP answers."""
