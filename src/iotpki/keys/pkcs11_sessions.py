"""Logged-in PKCS#11 sessions, shared by every backend in a process, safe across threads and forks.

One pool per module (shared library) and process; in it one read/write session per token,
logged in as the user once (PKCS#11 v2.40 §5.6: the login state belongs to the application,
not the session). Every call into the module happens under one lock: python-pkcs11 calls
C_Initialize without locking callbacks, which tells the module (SoftHSM2 among them) that it
will not be entered from several threads at once, and python-pkcs11 releases the GIL inside
calls. A token signs one thing at a time anyway.

After a fork the child must not use the parent's sessions or object handles (PKCS#11 v2.40
§6.6.1: a child process must call C_Initialize itself). The pool remembers the pid it opened
its sessions in; in another pid it re-initializes the module and opens new ones.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import exceptions as p11

from iotpki.keys.errors import TokenError
from iotpki.wire.pkcs11_uri import PKCS11URI

T = TypeVar("T")
# Errors after which the session (or a handle in it) is gone: open a new one and retry once.
_STALE = (p11.SessionHandleInvalid, p11.SessionClosed, p11.ObjectHandleInvalid,
          p11.KeyHandleInvalid, p11.UserNotLoggedIn)


class SessionPool:
    def __init__(self, module: Path) -> None:
        self._module = module
        self._lock = threading.RLock()
        self._pid = 0  # the process the module was initialized in; 0: not yet
        self._lib: Any = None
        self._sessions: dict[PKCS11URI, Any] = {}
        self._mechanisms: dict[PKCS11URI, frozenset[str]] = {}
        self.objects: dict[str, Any] = {}  # key reference → object handle, valid in this pid
        _POOLS.add(self)

    def run(self, token: PKCS11URI, read_pin: Callable[[], str],
            action: Callable[[Any], T]) -> T:
        """`action(session)` on the token's logged-in session, under the pool's lock."""
        with self._lock:
            try:
                return action(self._session(token, read_pin))
            except _STALE:
                self._forget(token)
                return action(self._session(token, read_pin))

    def mechanisms(self, token: PKCS11URI, read_pin: Callable[[], str]) -> frozenset[str]:
        """Names (without CKM_) of the mechanisms the token's slot offers."""
        with self._lock:
            self._session(token, read_pin)
            return self._mechanisms[token]

    def _session(self, token: PKCS11URI, read_pin: Callable[[], str]) -> Any:
        self._check_process()
        session = self._sessions.get(token)
        if session is None:
            session = self._open(token, read_pin)
            self._sessions[token] = session
        return session

    def _check_process(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        if self._pid:  # forked: nothing from the parent's C_Initialize may be used
            self._sessions.clear()
            self.objects.clear()
            self._lib.reinitialize()
        else:
            self._lib = _load(self._module)
        self._pid = pid

    def _open(self, token: PKCS11URI, read_pin: Callable[[], str]) -> Any:
        found = _find_token(self._lib, token, self._module)
        try:
            session = found.open(rw=True, user_pin=read_pin())
        except p11.UserAlreadyLoggedIn:  # another pool in this process logged in already
            session = found.open(rw=True)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as exc:
            raise TokenError(f"wrong PIN for {token.describe()}") from exc
        except p11.PinLocked as exc:
            raise TokenError(f"the user PIN of {token.describe()} is locked") from exc
        except p11.UserPinNotInitialized as exc:
            raise TokenError(f"{token.describe()} has no user PIN yet (initialize it)") from exc
        except p11.PKCS11Error as exc:
            raise TokenError(f"cannot open {token.describe()}: {type(exc).__name__}") from exc
        self._mechanisms[token] = frozenset(
            m.name for m in found.slot.get_mechanisms() if isinstance(m, pkcs11.Mechanism))
        return session

    def _forget(self, token: PKCS11URI) -> None:
        self._sessions.pop(token, None)
        self.objects.clear()

    def _after_fork(self) -> None:
        # A thread of the parent may have held the lock at fork time: the child gets a new one.
        self._lock = threading.RLock()


def _load(module: Path) -> Any:
    if not module.exists():
        raise TokenError(f"PKCS#11 module {module} does not exist (set IOTPKI_PKCS11_MODULE)")
    try:
        return pkcs11.lib(str(module))
    except (p11.PKCS11Error, RuntimeError, OSError) as exc:
        raise TokenError(f"cannot load PKCS#11 module {module}: {exc}") from exc


def _find_token(lib: Any, token: PKCS11URI, module: Path) -> Any:
    """The one token the URI's token attributes select (RFC 7512 §3.3: all must match)."""
    wanted = {"label": token.token, "manufacturer_id": token.manufacturer,
              "serial": token.serial, "model": token.model}
    matches = []
    for candidate in lib.get_tokens():
        if token.slot_id is not None and candidate.slot.slot_id != token.slot_id:
            continue
        if all(v is None or _attribute(candidate, k) == v for k, v in wanted.items()):
            matches.append(candidate)
    if not matches:
        raise TokenError(f"no PKCS#11 token matches {token.describe()} in module {module}")
    if len(matches) > 1:
        raise TokenError(f"{len(matches)} tokens match {token.describe()}: name one with "
                         "token=, serial= or slot-id=")
    return matches[0]


def _attribute(token: Any, name: str) -> str:
    value = getattr(token, name)
    return value.decode(errors="replace").strip() if isinstance(value, bytes) else str(value)


_POOLS: weakref.WeakSet[SessionPool] = weakref.WeakSet()
_SHARED: dict[Path, SessionPool] = {}
_SHARED_LOCK = threading.Lock()


def pool_for(module: Path) -> SessionPool:
    """The process's pool for a module: every backend on the same module shares its login."""
    with _SHARED_LOCK:
        pool = _SHARED.get(module)
        if pool is None:
            pool = _SHARED[module] = SessionPool(module)
        return pool


def _reset_locks_in_child() -> None:
    for pool in list(_POOLS):
        pool._after_fork()


os.register_at_fork(after_in_child=_reset_locks_in_child)
