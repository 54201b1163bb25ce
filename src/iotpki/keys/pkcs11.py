"""PKCS#11 key backend: CA, OCSP-responder and CMP keys made and used inside a token.

Key references are RFC 7512 URIs without a PIN, e.g.
`pkcs11:token=iotpki;object=chipco-root-3f9a;id=%5c%e1%07%aa%31%0b%42%d8;type=private`.
Keys generated here are CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and not CKA_EXTRACTABLE
(PKCS#11 v2.40 §4.9): the token never releases them, wrapped or plain. Only signing is
enabled on them (CKA_SIGN; no DECRYPT, DERIVE or UNWRAP), except an RSA key generated with
`decrypt=True` (a SCEP RA key, RFC 8894 §3.2.2: requests are encrypted to it), which also
has CKA_DECRYPT and decrypts with CKM_RSA_PKCS inside the token. `load` returns an
`ExternalECKey`/`ExternalRSAKey` whose `sign()` goes to the token, so cryptography's builders
sign certificates, CRLs and OCSP responses with it unchanged.

Key types on a token: ec-p256, ec-p384, rsa-2048/3072/4096. Ed25519 and ML-DSA are refused
before anything is created (SoftHSM2 and most HSMs in the field lack CKM_ML_DSA; EdDSA over
PKCS#11 3.0 is not wired here).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import MGF, Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_named_curve_parameters

from iotpki.keys.errors import KeyNotFoundError, TokenError
from iotpki.keys.pkcs11_sessions import SessionPool, pool_for
from iotpki.keys.token_pin import read_token_pin
from iotpki.wire.errors import DecodeError
from iotpki.wire.external_key import ExternalECKey, ExternalRSAKey, SignatureRequest
from iotpki.wire.keys import KEY_TYPES, UnsupportedKeyError
from iotpki.wire.pkcs11_mechanisms import missing_mechanisms, token_signature
from iotpki.wire.pkcs11_uri import PKCS11URI, decode_pkcs11_uri, encode_pkcs11_uri

SCHEME = "pkcs11"
log = logging.getLogger(__name__)
DEFAULT_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")  # Debian's softhsm2 package
DEFAULT_TOKEN = "pkcs11:token=iotpki"
_CURVES = {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}
_RSA_BITS = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}
_CURVE_OBJECTS: dict[bytes, ec.EllipticCurve] = {
    encode_named_curve_parameters("secp256r1"): ec.SECP256R1(),
    encode_named_curve_parameters("secp384r1"): ec.SECP384R1(),
}
_SIGN_ONLY = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
              Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
              Attribute.DERIVE: False, Attribute.UNWRAP: False}
_PUBLIC = {Attribute.TOKEN: True, Attribute.VERIFY: True, Attribute.ENCRYPT: False,
           Attribute.WRAP: False, Attribute.DERIVE: False}


class TokenECKey(ExternalECKey):
    key_ref: str


class TokenRSAKey(ExternalRSAKey):
    key_ref: str


def token_kind(key_type: str) -> str:
    """`ec` or `rsa`; anything else cannot live on a token here."""
    if key_type in _CURVES:
        return "ec"
    if key_type in _RSA_BITS:
        return "rsa"
    if key_type in KEY_TYPES:
        raise UnsupportedKeyError(
            f"key type {key_type} cannot be kept on a PKCS#11 token by iotpki (tokens hold "
            f"{', '.join([*_CURVES, *_RSA_BITS])}); choose one of those or the software backend")
    raise UnsupportedKeyError(f"unsupported key type {key_type!r}; known: {', '.join(KEY_TYPES)}")


class PKCS11KeyBackend:
    def __init__(self, module: Path = DEFAULT_MODULE, default_token: str = DEFAULT_TOKEN,
                 read_pin: Callable[[], str] = read_token_pin) -> None:
        self._module = module
        self._default = _parse(default_token)
        self._read_pin = read_pin
        self._loaded: dict[str, Any] = {}
        self._created: set[str] = set()  # only these may be destroyed by `discard`

    @property
    def _pool(self) -> SessionPool:
        return pool_for(self._module)

    # -- the KeyBackend interface ------------------------------------------------------------

    def check(self, key_type: str, location: str | None = None) -> None:
        """Raise now if a `key_type` key cannot be made at `location` (before anything is written)."""
        kind = token_kind(key_type)
        target = self._target(location)
        missing = missing_mechanisms(kind, self._pool.mechanisms(target.token_part, self._read_pin))
        if missing:
            raise UnsupportedKeyError(f"{target.token_part.describe()} lacks {', '.join(missing)} "
                                      f"needed for {key_type} keys")
        if target.names_object:
            self._refuse_existing(target)

    def generate(self, key_type: str, label: str, location: str | None = None,
                 decrypt: bool = False) -> str:
        self.check(key_type, location)
        target = self._new_object(self._target(location), label)
        kind = token_kind(key_type)
        if decrypt and kind != "rsa":
            raise UnsupportedKeyError(f"a {key_type} key cannot decrypt (RSA only)")
        private = {**_SIGN_ONLY, Attribute.DECRYPT: True} if decrypt else _SIGN_ONLY
        flags = MechanismFlag.SIGN | MechanismFlag.VERIFY
        if decrypt:
            flags |= MechanismFlag.DECRYPT | MechanismFlag.ENCRYPT

        def create(session: Any) -> None:
            names = {Attribute.LABEL: target.object, Attribute.ID: target.id}
            if kind == "ec":
                params = session.create_domain_parameters(KeyType.EC, {
                    Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[key_type])},
                    local=True)
                params.generate_keypair(
                    store=True, capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    public_template={**_PUBLIC, **names},
                    private_template={**_SIGN_ONLY, **names})
            else:
                session.generate_keypair(
                    KeyType.RSA, _RSA_BITS[key_type], store=True, capabilities=flags,
                    public_template={**_PUBLIC, **names},
                    private_template={**private, **names})

        self._call(target, create, f"generating a {key_type} key")
        return self._created_ref(target)

    def import_private_key(self, key: Any, label: str, location: str | None = None) -> str:
        """A key already on a token (loaded from its URI) is used where it is; a software key
        is copied onto the token as sensitive and non-extractable (it was not always so)."""
        existing = getattr(key, "key_ref", None)
        if isinstance(existing, str) and existing.startswith(f"{SCHEME}:"):
            return existing
        attributes = _private_attributes(key)
        target = self._new_object(self._target(location), label)
        names = {Attribute.LABEL: target.object, Attribute.ID: target.id}

        def create(session: Any) -> None:
            session.create_object({**attributes[0], **_SIGN_ONLY, **names})
            session.create_object({**attributes[1], **_PUBLIC, **names})

        self._call(target, create, "importing a key")
        return self._created_ref(target)

    def load(self, key_ref: str) -> Any:
        key = self._loaded.get(key_ref)
        if key is None:
            key = self._loaded[key_ref] = self._make_key(key_ref)
        return key

    def discard(self, key_ref: str) -> None:
        """Destroy a key this backend created in this process; forget any other."""
        self._loaded.pop(key_ref, None)
        if key_ref not in self._created:
            return
        self._created.discard(key_ref)
        uri = _parse(key_ref)

        def destroy(session: Any) -> None:
            for obj in session.get_objects({Attribute.ID: uri.id, Attribute.LABEL: uri.object}):
                obj.destroy()

        self._pool.objects.pop(key_ref, None)
        self._call(uri, destroy, "removing a key")

    def location_of(self, key_ref: str) -> str:
        """The token that holds a key, as a URI (where keys that go with it are made)."""
        return encode_pkcs11_uri(_parse(key_ref).token_part)

    # -- signing -------------------------------------------------------------------------------

    def _make_key(self, key_ref: str) -> Any:
        """The key object; its `key_ref` is the full reference (label and id) even when the
        caller named the key by label or id alone."""
        uri = _parse(key_ref)
        # Every attribute read is a call into the module: inside the pool's lock, never after.
        public, label, key_id = self._call(uri, lambda s: _public_key(s, uri),
                                           "reading a public key")
        full = encode_pkcs11_uri(replace(uri, object=label or None, id=key_id or None,
                                         type="private"))
        signer = functools.partial(self._sign, full)
        key: TokenECKey | TokenRSAKey = (
            TokenECKey(public, signer) if isinstance(public, ec.EllipticCurvePublicKey)
            else TokenRSAKey(public, signer, functools.partial(self._decrypt, full)))
        key.key_ref = full
        return key

    def _sign(self, key_ref: str, request: SignatureRequest) -> bytes:
        uri = _parse(key_ref)
        choice = token_signature(request, self._pool.mechanisms(uri.token_part, self._read_pin))

        def sign(session: Any) -> bytes:
            handle = self._pool.objects.get(key_ref)
            if handle is None:
                handle = self._pool.objects[key_ref] = _private_key(session, uri)
            param = _pss_param(choice.pss) if choice.pss else None
            return bytes(handle.sign(choice.data, mechanism=_mechanism(choice.mechanism),
                                     mechanism_param=param))

        return bytes(self._call(uri, sign, "signing"))

    def _decrypt(self, key_ref: str, ciphertext: bytes) -> bytes:
        """RSAES-PKCS1-v1_5 inside the token (CKM_RSA_PKCS); a ciphertext that does not decrypt
        is `ValueError`, as with a software key (and so is a key made without CKA_DECRYPT:
        logged)."""
        uri = _parse(key_ref)

        def decrypt(session: Any) -> bytes:
            handle = self._pool.objects.get(key_ref)
            if handle is None:
                handle = self._pool.objects[key_ref] = _private_key(session, uri)
            if not hasattr(handle, "decrypt"):  # python-pkcs11: no CKA_DECRYPT on the key
                log.warning("%s was not made to decrypt (CKA_DECRYPT)", uri.describe())
                raise ValueError("decryption failed")
            return bytes(handle.decrypt(ciphertext, mechanism=Mechanism.RSA_PKCS))

        try:
            return bytes(self._call(uri, decrypt, "decrypting"))
        except TokenError as exc:
            # Tokens report a ciphertext that does not decrypt variously (SoftHSM2: a general
            # error), and a key made without CKA_DECRYPT alike: the client's message is
            # refused either way; the log tells the operator which.
            log.warning("%s", exc)
            raise ValueError("decryption failed") from exc

    # -- helpers -------------------------------------------------------------------------------

    def _call(self, uri: PKCS11URI, action: Callable[[Any], Any], what: str) -> Any:
        try:
            return self._pool.run(uri.token_part, self._read_pin, action)
        except p11.NoSuchKey as exc:
            raise KeyNotFoundError(f"not found: {uri.describe()}") from exc
        except p11.MultipleObjectsReturned as exc:
            raise KeyNotFoundError(f"several keys match: {uri.describe()}; add id=") from exc
        except (p11.MechanismInvalid, p11.MechanismParamInvalid, p11.KeySizeRange,
                p11.FunctionNotSupported) as exc:
            raise UnsupportedKeyError(f"{uri.token_part.describe()} refused {what}: "
                                      f"{type(exc).__name__}") from exc
        except p11.PKCS11Error as exc:
            raise TokenError(f"{what} on {uri.describe()} failed: {type(exc).__name__}") from exc

    def _target(self, location: str | None) -> PKCS11URI:
        if location is None or location == SCHEME:
            return self._default
        return _parse(location)

    def _new_object(self, target: PKCS11URI, label: str) -> PKCS11URI:
        """Where a new key goes: the URI's own label/id, or `<label>-<hex>` and a random id."""
        suffix = os.urandom(8)
        return PKCS11URI(
            token=target.token, manufacturer=target.manufacturer, serial=target.serial,
            model=target.model, slot_id=target.slot_id,
            object=target.object or f"{label}-{suffix[:2].hex()}",
            id=target.id or suffix, type="private")

    def _refuse_existing(self, target: PKCS11URI) -> None:
        def exists(session: Any) -> bool:
            return any(True for _ in session.get_objects(_object_template(target)))

        if self._call(target, exists, "looking up a key"):
            raise TokenError(f"{target.describe()} exists already: pick a new object= label, or "
                             "import it (authority import --key-uri) to use it as it is")

    def _created_ref(self, target: PKCS11URI) -> str:
        ref = encode_pkcs11_uri(target)
        self._created.add(ref)
        return ref


def _parse(text: str) -> PKCS11URI:
    try:
        return decode_pkcs11_uri(text)
    except DecodeError as exc:
        raise KeyNotFoundError(str(exc)) from exc


def _object_template(uri: PKCS11URI) -> dict[Any, Any]:
    template: dict[Any, Any] = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
    if uri.object is not None:
        template[Attribute.LABEL] = uri.object
    if uri.id is not None:
        template[Attribute.ID] = uri.id
    return template


def _private_key(session: Any, uri: PKCS11URI) -> Any:
    if not uri.names_object:
        raise KeyNotFoundError(f"{encode_pkcs11_uri(uri)} names no key (object= or id=)")
    return session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=uri.object, id=uri.id)


def _public_key(session: Any, uri: PKCS11URI) -> tuple[Any, str, bytes]:
    """The cryptography public key of the pair (from the public object with the same id),
    and the private key's label and id."""
    private = _private_key(session, uri)
    matches = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                                        Attribute.ID: private.id}))
    if len(matches) != 1:
        raise KeyNotFoundError(f"{uri.describe()} has {len(matches)} public key objects with its "
                               "id (needs exactly one)")
    public = matches[0]
    if private.key_type == KeyType.EC:
        curve = _CURVE_OBJECTS.get(bytes(public[Attribute.EC_PARAMS]))
        if curve is None:
            raise UnsupportedKeyError(f"{uri.describe()} is on a curve other than P-256/P-384")
        point = _octet_string(bytes(public[Attribute.EC_POINT]))
        return (ec.EllipticCurvePublicKey.from_encoded_point(curve, point), private.label,
                private.id)
    if private.key_type == KeyType.RSA:
        return rsa.RSAPublicNumbers(
            int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
            int.from_bytes(public[Attribute.MODULUS], "big")).public_key(), private.label, \
            private.id
    raise UnsupportedKeyError(f"{uri.describe()} is a {private.key_type.name} key; "
                              "iotpki signs with EC and RSA keys on tokens")


def _octet_string(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 v2.40 §2.3.3); some tokens
    store the bare point."""
    if value[:1] == b"\x04" and len(value) >= 2:
        length, start = value[1], 2
        if length & 0x80:
            count = length & 0x7F
            length, start = int.from_bytes(value[2:2 + count], "big"), 2 + count
        if start + length == len(value):
            return value[start:]
    return value


def _private_attributes(key: Any) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Private and public object templates for importing a software key onto a token."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curve = {"secp256r1": "secp256r1", "secp384r1": "secp384r1"}.get(key.curve.name)
        if curve is None:
            raise UnsupportedKeyError(f"curve {key.curve.name} cannot be imported onto a token")
        params = encode_named_curve_parameters(curve)
        size = (key.curve.key_size + 7) // 8
        point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return ({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC,
                 Attribute.EC_PARAMS: params,
                 Attribute.VALUE: key.private_numbers().private_value.to_bytes(size, "big")},
                {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC,
                 Attribute.EC_PARAMS: params,
                 Attribute.EC_POINT: bytes([4, len(point)]) + point})
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        public = {Attribute.MODULUS: _int(n.public_numbers.n),
                  Attribute.PUBLIC_EXPONENT: _int(n.public_numbers.e)}
        return ({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.RSA,
                 **public, Attribute.PRIVATE_EXPONENT: _int(n.d), Attribute.PRIME_1: _int(n.p),
                 Attribute.PRIME_2: _int(n.q), Attribute.EXPONENT_1: _int(n.dmp1),
                 Attribute.EXPONENT_2: _int(n.dmq1), Attribute.COEFFICIENT: _int(n.iqmp)},
                {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.RSA,
                 **public})
    raise UnsupportedKeyError(f"a {type(key).__name__} cannot be imported onto a token "
                              "(EC P-256/P-384 and RSA only)")


def _int(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def _mechanism(name: str) -> Any:
    return Mechanism[name]


def _pss_param(pss: tuple[str, str, int]) -> tuple[Any, Any, int]:
    return Mechanism[pss[0]], MGF[pss[1]], pss[2]
