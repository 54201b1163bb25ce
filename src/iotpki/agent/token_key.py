"""The device's own key on a PKCS#11 token (a secure element, TPM-backed token, SoftHSM2).

`open_token_key("pkcs11:token=device;object=identity", module, pin)` finds the private key the
RFC 7512 URI names, generating it on the token first if it is not there, and returns a
`cryptography` private-key object (`ExternalECKey`/`ExternalRSAKey`) whose `sign()` runs on the
token: CSRs for EST/CMP enrollment and any other signature use it as they would a software key.
The key is made CKA_SENSITIVE and not CKA_EXTRACTABLE (PKCS#11 v2.40 §4.9), sign-only.

The PIN is an argument, or comes from the URI's `pin-source` query attribute naming a file
(RFC 7512 §2.3, `pin-source=file:/etc/device/pin`); it is never logged. Calls into the module
are serialized by one lock (python-pkcs11 initializes modules without locking callbacks), and
a forked child re-initializes the module before use (PKCS#11 v2.40 §6.6.1).

Self-contained on purpose: the agent imports `wire` only, never the server's key backends.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import MGF, Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_named_curve_parameters

from iotpki.wire.errors import PKIError
from iotpki.wire.external_key import ExternalECKey, ExternalRSAKey, SignatureRequest
from iotpki.wire.pkcs11_mechanisms import token_signature
from iotpki.wire.pkcs11_uri import PKCS11URI, decode_pkcs11_uri

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_CURVES = {"ec-p256": ("secp256r1", ec.SECP256R1()), "ec-p384": ("secp384r1", ec.SECP384R1())}
_RSA_BITS = {"rsa-2048": 2048, "rsa-3072": 3072}
_LOCK = threading.RLock()
_INITIALIZED_IN: dict[str, int] = {}  # module path → pid that initialized it


class TokenKeyError(PKIError):
    """The device key's token cannot be used (module, token, PIN, key type); no secret in it."""


class _TokenSigner:
    """Signs with one private key on one token; reopens the session in a new process."""

    def __init__(self, module: str, uri: PKCS11URI, pin: str) -> None:
        self._module, self._uri, self._pin = module, uri, pin
        self._pid = 0
        self._session: Any = None
        self._key: Any = None
        self._mechanisms: frozenset[str] = frozenset()

    def session(self) -> Any:
        if self._pid != os.getpid():
            self._key = None
            self._session = _open(self._module, self._uri, self._pin)
            self._mechanisms = frozenset(m.name for m in self._session.token.slot.get_mechanisms()
                                         if isinstance(m, Mechanism))
            self._pid = os.getpid()
        return self._session

    def __call__(self, request: SignatureRequest) -> bytes:
        with _LOCK:
            session = self.session()
            if self._key is None:
                self._key = session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                            label=self._uri.object, id=self._uri.id)
            choice = token_signature(request, self._mechanisms)
            param = (Mechanism[choice.pss[0]], MGF[choice.pss[1]], choice.pss[2]) \
                if choice.pss else None
            return bytes(self._key.sign(choice.data, mechanism=Mechanism[choice.mechanism],
                                        mechanism_param=param))


def open_token_key(uri: str, module: str = DEFAULT_MODULE, pin: str | None = None,
                   key_type: str = "ec-p256") -> ExternalECKey | ExternalRSAKey:
    """The key the URI names (object= and/or id=), generated as `key_type` if absent."""
    target = decode_pkcs11_uri(uri)
    if not target.names_object:
        raise TokenKeyError("the device key URI must name the key: add object= or id=")
    if key_type not in _CURVES and key_type not in _RSA_BITS:
        raise TokenKeyError(f"a device key on a token is one of "
                            f"{', '.join([*_CURVES, *_RSA_BITS])}, not {key_type}")
    signer = _TokenSigner(module, target, pin if pin is not None else _pin_source(target))
    with _LOCK:
        try:
            public = _public_key(signer.session(), target, key_type)
        except p11.PKCS11Error as exc:
            raise TokenKeyError(f"token key {uri}: {type(exc).__name__}") from exc
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ExternalECKey(public, signer)
    return ExternalRSAKey(public, signer)


def destroy_token_key(uri: str, module: str = DEFAULT_MODULE, pin: str | None = None) -> int:
    """Destroy the key pair the URI names (its private and public objects, matched by
    object= and id=); returns how many objects went. None there is not an error."""
    target = decode_pkcs11_uri(uri)
    if not target.names_object:
        raise TokenKeyError("the device key URI must name the key: add object= or id=")
    names: dict[Attribute, object] = {}
    if target.object:
        names[Attribute.LABEL] = target.object
    if target.id:
        names[Attribute.ID] = target.id
    with _LOCK:
        session = _open(module, target, pin if pin is not None else _pin_source(target))
        try:
            found = [obj for kind in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
                     for obj in session.get_objects({**names, Attribute.CLASS: kind})]
            for obj in found:
                obj.destroy()
        except p11.PKCS11Error as exc:
            raise TokenKeyError(f"token key {uri}: {type(exc).__name__}") from exc
        finally:
            session.close()
    return len(found)


def _open(module: str, uri: PKCS11URI, pin: str) -> Any:
    if not Path(module).exists():
        raise TokenKeyError(f"PKCS#11 module {module} does not exist")
    lib = pkcs11.lib(module)
    if _INITIALIZED_IN.setdefault(module, os.getpid()) != os.getpid():
        lib.reinitialize()  # forked: the parent's initialization is not ours to use
        _INITIALIZED_IN[module] = os.getpid()
    try:
        token = lib.get_token(token_label=uri.token, token_serial=uri.serial.encode()
                              if uri.serial else None)
    except (p11.NoSuchToken, p11.MultipleTokensReturned) as exc:
        raise TokenKeyError(f"no single token matches token={uri.token!r}") from exc
    try:
        return token.open(rw=True, user_pin=pin)
    except p11.UserAlreadyLoggedIn:
        return token.open(rw=True)
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as exc:
        raise TokenKeyError(f"wrong PIN for token {uri.token!r}") from exc
    except p11.PinLocked as exc:
        raise TokenKeyError(f"the PIN of token {uri.token!r} is locked") from exc


def _public_key(session: Any, uri: PKCS11URI, key_type: str) -> Any:
    try:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                  label=uri.object, id=uri.id)
    except p11.NoSuchKey:
        _generate(session, uri, key_type)
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                  label=uri.object, id=uri.id)
    public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=private.id)
    if private.key_type == KeyType.RSA:
        return rsa.RSAPublicNumbers(int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                                    int.from_bytes(public[Attribute.MODULUS], "big")).public_key()
    params = bytes(public[Attribute.EC_PARAMS])
    for name, curve in _CURVES.values():
        if params == encode_named_curve_parameters(name):
            point = bytes(public[Attribute.EC_POINT])
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point[2:])
    raise TokenKeyError("the device key is on a curve other than P-256/P-384")


def _generate(session: Any, uri: PKCS11URI, key_type: str) -> None:
    names = {Attribute.LABEL: uri.object or "device-key", Attribute.ID: uri.id or os.urandom(8)}
    private = {**names, Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
               Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
               Attribute.DERIVE: False, Attribute.UNWRAP: False}
    public = {**names, Attribute.TOKEN: True, Attribute.VERIFY: True}
    usage = MechanismFlag.SIGN | MechanismFlag.VERIFY
    if key_type in _CURVES:
        params = session.create_domain_parameters(KeyType.EC, {
            Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[key_type][0])}, local=True)
        params.generate_keypair(store=True, capabilities=usage, public_template=public,
                                private_template=private)
    else:
        session.generate_keypair(KeyType.RSA, _RSA_BITS[key_type], store=True,
                                 capabilities=usage, public_template=public,
                                 private_template=private)


def _pin_source(uri: PKCS11URI) -> str:
    """RFC 7512 §2.3 pin-source: here a file (a `file:` URI or a path), first line."""
    source = dict(uri.query).get("pin-source")
    if source is None:
        raise TokenKeyError("no PIN: pass one, or add ?pin-source=file:/path to the URI")
    path = Path(urlsplit(source).path if source.startswith("file:") else source)
    try:
        return path.read_text().splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise TokenKeyError(f"cannot read the PIN from {path}") from exc
