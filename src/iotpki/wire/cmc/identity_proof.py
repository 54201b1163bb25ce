"""The identity proof of a shared secret (RFC 5272 §6.2.1 identityProofV2, §6.2.2
identityProof):

1. the value is reqSequence of the PKIData exactly as received (tag and length included);
2. the shared secret (its UTF-8 octets) is hashed with proofAlgID (SHA-1 in version 1);
3. witness = MAC(key = that hash, value) with macAlgId (HMAC-SHA1 in version 1).

The hashes and HMACs are those of RFC 9481 (SHA-1 and SHA-2).
"""

from __future__ import annotations

import hashlib
import hmac

from iotpki.wire.cmp.algorithms import HASHES, HMACS, hashlib_name
from iotpki.wire.errors import PKIError


class ProofAlgorithmError(PKIError):
    """A proofAlgID or macAlgId we do not compute (CMCFailInfo badAlg)."""


def identity_witness(secret: bytes, req_sequence: bytes, hash_algorithm: str,
                     mac_algorithm: str) -> bytes:
    if hash_algorithm not in HASHES:
        raise ProofAlgorithmError(f"unsupported proofAlgID {hash_algorithm}")
    if mac_algorithm not in HMACS:
        raise ProofAlgorithmError(f"unsupported macAlgId {mac_algorithm}")
    key = hashlib.new(hashlib_name(HASHES[hash_algorithm]), secret).digest()
    return hmac.new(key, req_sequence, hashlib_name(HMACS[mac_algorithm])).digest()


def witness_matches(secret: bytes, req_sequence: bytes, hash_algorithm: str,
                    mac_algorithm: str, witness: bytes) -> bool:
    expected = identity_witness(secret, req_sequence, hash_algorithm, mac_algorithm)
    return hmac.compare_digest(expected, witness)
