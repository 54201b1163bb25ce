"""The RFC 9266 `tls-exporter` channel binding of a server-side TLS 1.3 connection (RFC 7030
§3.5 on TLS 1.3, where tls-unique is undefined): 32 bytes of TLS keying material (RFC 8446
§7.5, RFC 5705) with the label "EXPORTER-Channel-Binding" and no context.

Python's `ssl` module has no keying-material exporter, but the `_ssl` extension it wraps is
linked against OpenSSL, whose `SSL_export_keying_material` computes it. This module calls
that function through ctypes on the connection's own `SSL *`:

- the function is looked up through the `_ssl` extension's handle, so it is the OpenSSL the
  connection runs on (a Python with OpenSSL linked statically exports none: unavailable);
- the `SSL *` is the second pointer after the object header of `_ssl._SSLSocket`, the
  object behind `ssl.SSLObject._sslobj` (`PySSLSocket` in CPython 3.8 - 3.13:
  `Socket`, `ssl`, `ctx`, ...). The layout is checked before the pointer is used: the next
  field must be the address of the object's own `context` (compared, never dereferenced),
  and OpenSSL's application data of the candidate `SSL *` must point back to the object
  (CPython sets it with `SSL_set_app_data`). Any other interpreter, version, layout or
  failure gives None, and the caller treats the binding as unavailable (docs/est.md).

Only the listener's event-loop thread calls this, right after the handshake, while the
connection object is alive.
"""

from __future__ import annotations

import ctypes
import logging
import ssl
import sys
from functools import cache
from typing import Any

LABEL = b"EXPORTER-Channel-Binding"  # RFC 9266 §2
LENGTH = 32
_HEADER = 2 * ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD: refcount, type
_POINTER = ctypes.sizeof(ctypes.c_void_p)
_KNOWN_LAYOUT = ((3, 8), (3, 13))  # CPython versions whose PySSLSocket starts Socket, ssl, ctx
log = logging.getLogger(__name__)


class _OpenSSL:
    """The two OpenSSL functions used, from the library `_ssl` is linked against."""

    def __init__(self, library: Any) -> None:
        self.export = library.SSL_export_keying_material
        self.export.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                ctypes.c_size_t, ctypes.c_int]
        self.export.restype = ctypes.c_int
        self.app_data = library.SSL_get_ex_data
        self.app_data.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.app_data.restype = ctypes.c_void_p


@cache
def _openssl() -> _OpenSSL | None:
    version = sys.version_info[:2]
    if sys.implementation.name != "cpython" or not (
            _KNOWN_LAYOUT[0] <= version <= _KNOWN_LAYOUT[1]):
        log.warning("tls-exporter unavailable: unknown ssl object layout on %s %s",
                    sys.implementation.name, sys.version.split()[0])
        return None
    try:
        import _ssl  # the extension module whose OpenSSL runs the connection
        return _OpenSSL(ctypes.CDLL(_ssl.__file__))
    except (ImportError, OSError, AttributeError) as exc:
        log.warning("tls-exporter unavailable: no SSL_export_keying_material (%s)", exc)
        return None


def _ssl_pointer(connection: Any, openssl: _OpenSSL) -> int | None:
    """The `SSL *` of an `_ssl._SSLSocket`, or None if the layout is not the known one."""
    kind = type(connection)
    if f"{kind.__module__}.{kind.__qualname__}" != "_ssl._SSLSocket" \
            or kind.__basicsize__ < _HEADER + 3 * _POINTER:
        return None
    address = id(connection)
    candidate = ctypes.c_void_p.from_address(address + _HEADER + _POINTER).value
    context = ctypes.c_void_p.from_address(address + _HEADER + 2 * _POINTER).value
    if not candidate or context != id(connection.context):
        return None
    if openssl.app_data(candidate, 0) != address:
        return None
    return candidate


@cache
def _layout_warning() -> None:
    log.warning("tls-exporter unavailable: unexpected ssl object layout")


def tls_exporter(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> bytes | None:
    """RFC 9266 tls-exporter of a TLS 1.3 connection after its handshake; None when it
    cannot be had (not TLS 1.3, or see the module docstring)."""
    if ssl_object.version() != "TLSv1.3":
        return None
    openssl = _openssl()
    connection = getattr(ssl_object, "_sslobj", None)
    if openssl is None or connection is None:
        return None
    pointer = _ssl_pointer(connection, openssl)
    if pointer is None:
        _layout_warning()
        return None
    out = ctypes.create_string_buffer(LENGTH)
    # RFC 8446 §7.5: no context and an empty context are the same exporter on TLS 1.3.
    if openssl.export(pointer, out, LENGTH, LABEL, len(LABEL), None, 0, 0) != 1:
        return None
    return out.raw
