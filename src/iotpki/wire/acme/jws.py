"""JSON Web Signature as ACME uses it (RFC 8555 §6.2, RFC 7515, RFC 7517, RFC 7518, RFC 8037).

- Only the flattened JSON serialization (§6.2: `protected`, `payload`, `signature`); an
  unprotected header (`header`) is refused, as are `none` and MAC algorithms on a request.
- The protected header carries `alg`, `nonce`, `url` and exactly one of `jwk` / `kid`.
- Algorithms: ES256, ES384 (RFC 7518 §3.4: the signature is the raw `r || s`), RS256
  (§3.3, RSASSA-PKCS1-v1_5 with SHA-256, keys of at least 2048 bits), EdDSA with Ed25519
  (RFC 8037). HS256/384/512 only inside External Account Binding (RFC 8555 §7.3.4).
- JWK thumbprints per RFC 7638 (the required members, sorted, no whitespace, SHA-256).

`decode_jws` parses; `verify_jws` checks the signature with a given key. Both raise
`JWSError` (with the ACME problem type the server answers with) and never anything else.
`sign_jws` builds a request the same way a client does (tests, benchmark, agent).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from iotpki.wire.errors import DecodeError

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

SIGNATURE_ALGORITHMS = ("ES256", "ES384", "RS256", "EdDSA")
MAC_ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_CURVES: dict[str, tuple[ec.EllipticCurve, int, str]] = {
    "P-256": (ec.SECP256R1(), 32, "ES256"), "P-384": (ec.SECP384R1(), 48, "ES384")}
MIN_RSA_BITS = 2048
MAX_JWS_BYTES = 64 * 1024


class JWSError(DecodeError):
    """A request that is not an acceptable JWS; `problem` is the ACME error type name
    (`malformed`, `badSignatureAlgorithm`, `badPublicKey`, `unauthorized`)."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class JWS:
    """A decoded flattened JWS; the signature not yet checked."""

    header: Mapping[str, Any]  # the protected header
    payload: bytes  # b"" for POST-as-GET (RFC 8555 §6.3)
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def nonce(self) -> str | None:
        value = self.header.get("nonce")
        return value if isinstance(value, str) else None

    @property
    def url(self) -> str:
        return str(self.header["url"])

    @property
    def kid(self) -> str | None:
        value = self.header.get("kid")
        return value if isinstance(value, str) else None

    @property
    def jwk(self) -> Mapping[str, Any] | None:
        value = self.header.get("jwk")
        return value if isinstance(value, Mapping) else None

    def json_payload(self) -> dict[str, Any]:
        """The payload as a JSON object; `JWSError(malformed)` otherwise."""
        try:
            value = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise JWSError("malformed", "payload is not JSON") from exc
        if not isinstance(value, dict):
            raise JWSError("malformed", "payload is not a JSON object")
        return value


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: Any, what: str = "value") -> bytes:
    """RFC 7515 §2: base64url without padding; anything else is `JWSError(malformed)`."""
    if not isinstance(text, str) or "=" in text or not text.isascii():
        raise JWSError("malformed", f"{what} is not base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JWSError("malformed", f"{what} is not base64url") from exc


def decode_jws(body: bytes) -> JWS:
    """Parse a flattened JWS (RFC 8555 §6.2) and its protected header."""
    if len(body) > MAX_JWS_BYTES:
        raise JWSError("malformed", "request body too large")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise JWSError("malformed", "request body is not JSON") from exc
    if not isinstance(document, dict) or set(document) - {"protected", "payload", "signature",
                                                          "header"}:
        raise JWSError("malformed", "request body is not a flattened JWS")
    if "header" in document:
        raise JWSError("malformed", "the JWS Unprotected Header must not be used (RFC 8555 §6.2)")
    protected_text = document.get("protected")
    header = _json_object(b64url_decode(protected_text, "protected header"), "protected header")
    payload = b64url_decode(document.get("payload"), "payload")
    signature = b64url_decode(document.get("signature"), "signature")
    _check_header(header)
    signing_input = f"{protected_text}.{document['payload']}".encode("ascii")
    return JWS(header, payload, signing_input, signature)


def _check_header(header: Mapping[str, Any]) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise JWSError("malformed", "protected header lacks alg")
    if alg not in SIGNATURE_ALGORITHMS:
        raise JWSError("badSignatureAlgorithm", f"algorithm {alg!r} is not supported")
    if not isinstance(header.get("url"), str):
        raise JWSError("malformed", "protected header lacks url (RFC 8555 §6.4)")
    if ("jwk" in header) == ("kid" in header):
        raise JWSError("malformed", "protected header must have exactly one of jwk and kid")
    if "kid" in header and not isinstance(header["kid"], str):
        raise JWSError("malformed", "kid is not a string")
    if "jwk" in header and not isinstance(header["jwk"], Mapping):
        raise JWSError("malformed", "jwk is not an object")
    if "crit" in header:
        raise JWSError("malformed", "no critical header extension is understood")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise JWSError("malformed", f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise JWSError("malformed", f"{what} is not a JSON object")
    return value


# -- keys -----------------------------------------------------------------------------------------

def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """RFC 7517/7518/8037: an EC (P-256, P-384), RSA (≥ 2048 bits) or OKP Ed25519 public key;
    a private member or another key kind is `JWSError(badPublicKey)`."""
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise JWSError("badPublicKey", "the JWK holds private key material")
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            return _ec_key(jwk)
        if kty == "RSA":
            return _rsa_key(jwk)
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            raw = _member(jwk, "x")
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except JWSError as exc:
        raise JWSError("badPublicKey", exc.detail) from exc
    except ValueError as exc:
        raise JWSError("badPublicKey", f"JWK is not a valid key: {exc}") from exc
    raise JWSError("badPublicKey", f"JWK key type {kty!r} is not supported")


def _ec_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    curve = _CURVES.get(str(jwk.get("crv")))
    if curve is None:
        raise JWSError("badPublicKey", f"curve {jwk.get('crv')!r} is not supported")
    x, y = _member(jwk, "x"), _member(jwk, "y")
    if len(x) != curve[1] or len(y) != curve[1]:
        raise JWSError("badPublicKey", "EC coordinates of the wrong length")
    return ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve[0]).public_key()


def _rsa_key(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey:
    n, e = _member(jwk, "n"), _member(jwk, "e")
    key = rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
    if key.key_size < MIN_RSA_BITS:
        raise JWSError("badPublicKey", f"RSA keys need at least {MIN_RSA_BITS} bits")
    return key


def _member(jwk: Mapping[str, Any], name: str) -> bytes:
    value = b64url_decode(jwk.get(name), f"JWK member {name}")
    if not value:
        raise JWSError("badPublicKey", f"JWK member {name} is empty")
    return value


def jwk_of(key: PublicKey) -> dict[str, str]:
    """The public JWK with only the required members (RFC 7638 §3.2)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        numbers = key.public_numbers()
        return {"crv": "P-256" if size == 32 else "P-384", "kty": "EC",
                "x": b64url_encode(numbers.x.to_bytes(size, "big")),
                "y": b64url_encode(numbers.y.to_bytes(size, "big"))}
    if isinstance(key, rsa.RSAPublicKey):
        rsa_numbers = key.public_numbers()
        return {"e": b64url_encode(_unsigned(rsa_numbers.e)), "kty": "RSA",
                "n": b64url_encode(_unsigned(rsa_numbers.n))}
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return {"crv": "Ed25519", "kty": "OKP",
            "x": b64url_encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw))}


def _unsigned(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def spki_der(key: Any) -> bytes:
    """The DER SubjectPublicKeyInfo of any public key object; b"" if it has none."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    try:
        der: bytes = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except (AttributeError, ValueError, TypeError):
        return b""
    return der


def thumbprint(key: PublicKey) -> str:
    """RFC 7638: base64url(SHA-256(canonical JSON of the required members))."""
    canonical = json.dumps(jwk_of(key), sort_keys=True, separators=(",", ":"))
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def algorithm_fits(alg: str, key: PublicKey) -> bool:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return alg == ("ES256" if key.curve.key_size == 256 else "ES384")
    if isinstance(key, rsa.RSAPublicKey):
        return alg == "RS256"
    return alg == "EdDSA"


def verify_jws(jws: JWS, key: PublicKey) -> None:
    """Raise `JWSError` unless `jws` is signed by `key` with its header's algorithm."""
    if not algorithm_fits(jws.alg, key):
        raise JWSError("badSignatureAlgorithm", f"algorithm {jws.alg} does not fit the key")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(jws.signature) != 2 * size:
                raise InvalidSignature
            r = int.from_bytes(jws.signature[:size], "big")
            s = int.from_bytes(jws.signature[size:], "big")
            digest = hashes.SHA256() if size == 32 else hashes.SHA384()
            key.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(digest))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(jws.signature, jws.signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(jws.signature, jws.signing_input)
    except InvalidSignature as exc:
        raise JWSError("malformed", "JWS signature does not verify") from exc


# -- External Account Binding (RFC 8555 §7.3.4) -----------------------------------------------

@dataclass(frozen=True)
class MACJWS:
    header: Mapping[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes

    @property
    def kid(self) -> str:
        return str(self.header["kid"])


def decode_mac_jws(value: Any) -> MACJWS:
    """The `externalAccountBinding` member: a flattened JWS with a MAC algorithm, `kid` and
    `url`, and no `nonce` (§7.3.4)."""
    if not isinstance(value, Mapping) or set(value) != {"protected", "payload", "signature"}:
        raise JWSError("malformed", "externalAccountBinding is not a flattened JWS")
    header = _json_object(b64url_decode(value["protected"], "EAB header"), "EAB header")
    if header.get("alg") not in MAC_ALGORITHMS:
        raise JWSError("badSignatureAlgorithm", "externalAccountBinding needs an HS* algorithm")
    if not isinstance(header.get("kid"), str) or not isinstance(header.get("url"), str):
        raise JWSError("malformed", "externalAccountBinding header needs kid and url")
    if "nonce" in header:
        raise JWSError("malformed", "externalAccountBinding header must not carry a nonce")
    payload = b64url_decode(value["payload"], "EAB payload")
    signature = b64url_decode(value["signature"], "EAB signature")
    signing_input = f"{value['protected']}.{value['payload']}".encode("ascii")
    return MACJWS(header, payload, signing_input, signature)


def verify_mac_jws(jws: MACJWS, key: bytes) -> None:
    digest = MAC_ALGORITHMS[str(jws.header["alg"])]
    expected = hmac.new(key, jws.signing_input, digest).digest()
    if not hmac.compare_digest(expected, jws.signature):
        raise JWSError("unauthorized", "externalAccountBinding MAC does not verify")


# -- building requests (clients, tests) ------------------------------------------------------

def sign_jws(key: PrivateKey, payload: bytes | dict[str, Any] | None, url: str,
             nonce: str | None, kid: str | None = None,
             extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """A flattened JWS as a client sends it: `jwk` when `kid` is None; `payload` None is
    POST-as-GET (empty payload)."""
    public = key.public_key()
    alg = _algorithm_for(public)
    header: dict[str, Any] = {"alg": alg, "url": url, **(extra or {})}
    if nonce is not None:
        header["nonce"] = nonce
    if kid is None:
        header["jwk"] = jwk_of(public)
    else:
        header["kid"] = kid
    raw = b"" if payload is None else (
        payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    protected = b64url_encode(json.dumps(header).encode())
    encoded = b64url_encode(raw)
    signing_input = f"{protected}.{encoded}".encode("ascii")
    return {"protected": protected, "payload": encoded,
            "signature": b64url_encode(_signature(key, signing_input))}


def sign_mac_jws(mac_key: bytes, key_id: str, payload: Mapping[str, Any], url: str,
                 alg: str = "HS256") -> dict[str, str]:
    protected = b64url_encode(json.dumps({"alg": alg, "kid": key_id, "url": url}).encode())
    encoded = b64url_encode(json.dumps(payload).encode())
    mac = hmac.new(mac_key, f"{protected}.{encoded}".encode("ascii"), MAC_ALGORITHMS[alg])
    return {"protected": protected, "payload": encoded, "signature": b64url_encode(mac.digest())}


def _algorithm_for(key: PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES256" if key.curve.key_size == 256 else "ES384"
    return "RS256" if isinstance(key, rsa.RSAPublicKey) else "EdDSA"


def _signature(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        digest = hashes.SHA256() if size == 32 else hashes.SHA384()
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)
