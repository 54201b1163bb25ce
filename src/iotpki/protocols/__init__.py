"""Thin protocol adapters (EST, CMP, OCSP, CRL, REST): decode, call the core, encode."""
