"""PKCS#11 URIs (RFC 7512): which token, and which object on it, a key reference names.

`pkcs11:token=iotpki-ca;object=chipco-root-1a2b;id=%8f%03;type=private`

RFC 7512 §2.3: path attributes are separated by `;`, query attributes by `&`; values are
percent-encoded (UTF-8), `id` is raw bytes percent-encoded byte by byte. We understand the
token-selecting attributes (`token`, `manufacturer`, `serial`, `model`, `slot-id`) and the
object-selecting ones (`object`, `id`, `type`). An unknown path attribute is refused: §3.3
says a URI with an attribute the consumer does not understand must not match anything, and
refusing it names the problem instead of silently picking no key. Query attributes are kept
as given; `pin-value` is refused outright because key references are stored in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote_to_bytes

from iotpki.wire.errors import DecodeError

SCHEME = "pkcs11:"
TOKEN_ATTRIBUTES = ("token", "manufacturer", "serial", "model", "slot-id")
OBJECT_ATTRIBUTES = ("object", "id", "type")
OBJECT_TYPES = ("public", "private", "cert", "secret-key", "data")
QUERY_ATTRIBUTES = ("pin-source", "module-name", "module-path")
# RFC 7512 §2.3 pk11-pchar / pk11-qchar: unreserved characters and a few sub-delims go
# unescaped; everything else is %-encoded.
_SAFE_PATH = "-._~:[]@!$'()*+,="
_SAFE_QUERY = "-._~:[]@!$'()*+,=/?|"


@dataclass(frozen=True)
class PKCS11URI:
    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    slot_id: int | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    query: tuple[tuple[str, str], ...] = field(default=())

    @property
    def names_object(self) -> bool:
        """True if the URI picks one object (a label or an id), not just a token."""
        return self.object is not None or self.id is not None

    @property
    def token_part(self) -> PKCS11URI:
        """The same URI without its object attributes: the token alone."""
        return replace(self, object=None, id=None, type=None)

    def describe(self) -> str:
        """Short human wording for error messages (never a PIN: URIs here cannot hold one)."""
        where = f"token {self.token!r}" if self.token is not None else "the first token"
        if self.object is not None:
            return f"key {self.object!r} on {where}"
        if self.id is not None:
            return f"key id {self.id.hex()} on {where}"
        return where


def decode_pkcs11_uri(text: str) -> PKCS11URI:
    """Parse an RFC 7512 URI; raise `DecodeError` naming what is wrong."""
    if not text.startswith(SCHEME):
        raise DecodeError(f"not a PKCS#11 URI (must start with {SCHEME!r}): {text!r}")
    path, _, query = text[len(SCHEME):].partition("?")
    values: dict[str, object] = {}
    for part in filter(None, path.split(";")):
        name, sep, raw = part.partition("=")
        if not sep:
            raise DecodeError(f"PKCS#11 URI attribute without a value: {part!r}")
        if name in values:
            raise DecodeError(f"PKCS#11 URI repeats the attribute {name!r}")  # §2.3
        values[name] = _path_value(name, raw)
    return PKCS11URI(
        token=_str(values.get("token")), manufacturer=_str(values.get("manufacturer")),
        serial=_str(values.get("serial")), model=_str(values.get("model")),
        slot_id=_int(values.get("slot-id")),
        object=_str(values.get("object")), id=_bytes(values.get("id")),
        type=_str(values.get("type")), query=_query(query),
    )


def encode_pkcs11_uri(uri: PKCS11URI) -> str:
    """The URI text, attributes in a fixed order (token first, then the object)."""
    parts = []
    for name in ("token", "manufacturer", "serial", "model"):
        value = getattr(uri, name)
        if value is not None:
            parts.append(f"{name}={quote(value, safe=_SAFE_PATH)}")
    if uri.slot_id is not None:
        parts.append(f"slot-id={uri.slot_id}")
    if uri.object is not None:
        parts.append(f"object={quote(uri.object, safe=_SAFE_PATH)}")
    if uri.id is not None:
        parts.append("id=" + "".join(f"%{b:02x}" for b in uri.id))
    if uri.type is not None:
        parts.append(f"type={uri.type}")
    text = SCHEME + ";".join(parts)
    if uri.query:
        text += "?" + "&".join(f"{k}={quote(v, safe=_SAFE_QUERY)}" for k, v in uri.query)
    return text


def _path_value(name: str, raw: str) -> object:
    data = unquote_to_bytes(raw)
    if name == "id":
        return data
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"PKCS#11 URI attribute {name} is not UTF-8") from exc
    if name == "slot-id":
        if not value.isdigit():
            raise DecodeError(f"PKCS#11 URI slot-id must be a decimal number, not {value!r}")
        return int(value)
    if name == "type" and value not in OBJECT_TYPES:
        raise DecodeError(f"PKCS#11 URI type must be one of {', '.join(OBJECT_TYPES)}")
    if name not in TOKEN_ATTRIBUTES + OBJECT_ATTRIBUTES:
        raise DecodeError(f"PKCS#11 URI attribute {name!r} is not understood here")
    return value


def _query(query: str) -> tuple[tuple[str, str], ...]:
    items = []
    for part in filter(None, query.split("&")):
        name, _, raw = part.partition("=")
        if name == "pin-value":
            raise DecodeError("a PIN in a PKCS#11 URI would be stored with the key reference; "
                              "give it in IOTPKI_PKCS11_PIN or IOTPKI_PKCS11_PIN_FILE instead")
        if name not in QUERY_ATTRIBUTES:
            raise DecodeError(f"PKCS#11 URI query attribute {name!r} is not understood here")
        items.append((name, unquote_to_bytes(raw).decode("utf-8", "replace")))
    return tuple(items)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _bytes(value: object) -> bytes | None:
    return value if isinstance(value, bytes) else None
