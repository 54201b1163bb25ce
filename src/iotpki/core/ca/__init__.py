"""Certification authority: authorities, profiles, policy, the issuance path, serials and the
delegated service certificates."""
