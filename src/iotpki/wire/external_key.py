"""Private keys whose signatures are made elsewhere (a PKCS#11 token), in `cryptography`'s shape.

`cryptography`'s builders (certificate, CSR, CRL, OCSP response, PKCS#7) accept any object
that subclasses `ec.EllipticCurvePrivateKey` or `rsa.RSAPrivateKey` and call its `sign()`
(checked with cryptography 50). These classes turn that call into a `SignatureRequest` —
the scheme, the hash and the digest already computed here — and hand it to a `RawSigner`
that the holder of the key supplies. The private key never passes through: `private_bytes`,
`private_numbers`, ECDH and RSA decryption refuse.

Encodings: ECDSA comes back from a token as r || s (PKCS#11 v2.40 §2.3.1) and becomes the
DER ECDSA-Sig-Value of RFC 5480 §2.2 / RFC 3279 §2.2.3; RSA signatures are the octet string
itself (RFC 8017 §8.1.1, §8.2.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding

from iotpki.wire.errors import PKIError


class ExternalKeyError(PKIError):
    """An operation the external key cannot do (export, decrypt, an unsupported signature)."""


@dataclass(frozen=True)
class SignatureRequest:
    """What to sign: `scheme` is `ecdsa`, `rsa-pkcs1v15` or `rsa-pss`; `digest` is the hash of
    the message under `hash`; `message` is the message itself (None if the caller prehashed),
    for a token that only hashes and signs in one mechanism; `salt_length` is for PSS only."""

    scheme: str
    hash: hashes.HashAlgorithm
    digest: bytes
    message: bytes | None = None
    salt_length: int | None = None


RawSigner = Callable[[SignatureRequest], bytes]


def _request(scheme: str, data: bytes, algorithm: Any,
             salt_length: int | None = None) -> SignatureRequest:
    """The request with its digest; `Prehashed` means the caller already hashed."""
    if isinstance(algorithm, utils.Prehashed):
        if len(data) != algorithm.digest_size:
            raise ExternalKeyError("prehashed data does not have the digest's length")
        return SignatureRequest(scheme, algorithm._algorithm, data, None, salt_length)
    if not isinstance(algorithm, hashes.HashAlgorithm):
        raise ExternalKeyError(f"cannot sign with {algorithm!r}: a hash algorithm is needed")
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return SignatureRequest(scheme, algorithm, digest.finalize(), data, salt_length)


def _refuse(what: str) -> NoReturn:
    raise ExternalKeyError(f"{what}: the private key stays in its token")


class ExternalECKey(ec.EllipticCurvePrivateKey):
    """An EC private key held elsewhere; `sign` makes ECDSA signatures through `signer`."""

    def __init__(self, public: ec.EllipticCurvePublicKey, signer: RawSigner) -> None:
        self._public = public
        self._signer = signer

    def sign(self, data: Any, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise ExternalKeyError(f"unsupported EC signature {signature_algorithm!r}")
        raw = self._signer(_request("ecdsa", bytes(data), signature_algorithm.algorithm))
        half = len(raw) // 2
        if len(raw) % 2 or half == 0:
            raise ExternalKeyError("the token returned a malformed ECDSA signature")
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                          int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _refuse("ECDH with a signing key")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _refuse("private numbers")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        _refuse("private key export")

    def __copy__(self) -> ExternalECKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> ExternalECKey:
        return self


RawDecrypter = Callable[[bytes], bytes]  # RSAES-PKCS1-v1_5 decryption (RFC 8017 §7.2.2)


class ExternalRSAKey(rsa.RSAPrivateKey):
    """An RSA private key held elsewhere: PKCS#1 v1.5 and PSS signatures through `signer`;
    PKCS#1 v1.5 decryption through `decrypter` when the key was made to decrypt."""

    def __init__(self, public: rsa.RSAPublicKey, signer: RawSigner,
                 decrypter: RawDecrypter | None = None) -> None:
        self._public = public
        self._signer = signer
        self._decrypter = decrypter

    def sign(self, data: Any, padding: AsymmetricPadding, algorithm: Any) -> bytes:
        if isinstance(padding, _padding.PKCS1v15):
            return self._signer(_request("rsa-pkcs1v15", bytes(data), algorithm))
        if isinstance(padding, _padding.PSS):
            hash_algorithm = algorithm._algorithm if isinstance(
                algorithm, utils.Prehashed) else algorithm
            salt = self._salt_length(padding, hash_algorithm)
            return self._signer(_request("rsa-pss", bytes(data), algorithm, salt))
        raise ExternalKeyError(f"unsupported RSA padding {padding.name}")

    def _salt_length(self, pss: _padding.PSS, algorithm: hashes.HashAlgorithm) -> int:
        # RFC 8017 §9.1.1: emLen >= hLen + sLen + 2, so the maximum is emLen - hLen - 2.
        salt: Any = pss._salt_length
        if isinstance(salt, int):
            return salt
        if salt is _padding.PSS.DIGEST_LENGTH:
            return algorithm.digest_size
        if salt is _padding.PSS.MAX_LENGTH:
            return (self.key_size + 7) // 8 - algorithm.digest_size - 2
        raise ExternalKeyError("PSS signing needs an explicit salt length")

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        """PKCS#1 v1.5 only; a failure to decrypt is `ValueError`, as in `cryptography`."""
        if self._decrypter is None:
            _refuse("RSA decryption with a signing key")
        if not isinstance(padding, _padding.PKCS1v15):
            raise ExternalKeyError(f"unsupported RSA decryption padding {padding.name}")
        return self._decrypter(bytes(ciphertext))

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _refuse("private numbers")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        _refuse("private key export")

    def __copy__(self) -> ExternalRSAKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> ExternalRSAKey:
        return self


_padding = padding  # `sign` takes a parameter named `padding`, as in cryptography's interface
