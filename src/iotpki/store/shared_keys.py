"""Keys on two or more devices of one owner, recorded as they appear (the posture check "the
same public key on two devices", `core.lifecycle.posture`).

Asked at read time, the question is a group-by over every certificate (`ix_certificates_key_id`
has one entry per certificate, and a fleet's keys are mostly renewed on the same device, so
"key in two certificates" finds them all). Asked when an identity is linked, it is one lookup:
do other devices of this device's owner hold a certificate with the new certificate's key (by
`ix_certificates_key_id`)? The answer is kept in `shared_keys` (owner, key), which the page
reads. A key already recorded costs one primary-key probe, so a fleet whose devices all got
the same few keys (a firmware bug) is not searched again at every link. A device changing
owner is checked again for both owners. Never recorded: a key renewed on the same device.

Two transactions linking the same key at once would not see each other's link (read
committed): on PostgreSQL a link first takes a transaction-scoped advisory lock on its key,
so the second waits for the first's COMMIT and its lookup (a new statement, a new snapshot)
sees that link. SQLite has one writer at a time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Executable, bindparam, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite

from iotpki.core.lifecycle.posture import DeviceRef
from iotpki.store.prepared import Prepared
from iotpki.store.schema import certificates, device_identities, devices, shared_keys
from iotpki.store.unindexed import unindexed

c, i, d, s = certificates.c, device_identities.c, devices.c, shared_keys.c



def _recorded(owner: Any, key: Any) -> Any:
    return exists(select(1).select_from(shared_keys).where(s.owner_id == owner, s.key_id == key))


def _record(dialect: str, by_device: bool) -> Executable:
    """INSERT the (owner, key) of the linked certificate (`by_device`: of every certificate
    the device holds) when another device of the owner holds the key and it is not recorded."""
    held, linked = certificates.alias("held"), device_identities.alias("linked")
    other = devices.alias("other")
    elsewhere = exists(select(1).select_from(
        held.join(linked, linked.c.fingerprint == held.c.fingerprint)
        .join(other, other.c.id == linked.c.device_id)).where(
        held.c.key_id == c.key_id, unindexed(other.c.owner_id) == d.owner_id,
        other.c.id != d.id))
    own = (certificates.join(device_identities, i.fingerprint == c.fingerprint)
           if by_device else certificates)
    found = select(d.owner_id, c.key_id).distinct().select_from(own).join(
        devices, d.id == bindparam("device")).where(
        i.device_id == bindparam("device") if by_device
        else c.fingerprint == bindparam("fingerprint"),
        c.key_id.is_not(None), d.owner_id.is_not(None),
        ~_recorded(d.owner_id, c.key_id), elsewhere)
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # ON CONFLICT DO NOTHING: two nodes recording the same key leave their transactions usable.
    return insert_(shared_keys).from_select(["owner_id", "key_id"], found).on_conflict_do_nothing()


_RECORD_LINKED: Prepared = Prepared(lambda dialect: _record(dialect, by_device=False))
_RECORD_DEVICE: Prepared = Prepared(lambda dialect: _record(dialect, by_device=True))
_FORGET: Prepared = Prepared(shared_keys.delete().where(
    s.owner_id == bindparam("owner"), s.key_id == bindparam("key")))


# The key's 64-bit hash as the lock's name: another key with the same hash only waits.
_LOCK_KEY: Prepared = Prepared(select(func.pg_advisory_xact_lock(
    func.hashtextextended(c.key_id, 0))).where(c.fingerprint == bindparam("fingerprint"),
                                              c.key_id.is_not(None)))


def record_linked(conn: Connection, device_id: str, fingerprint: str) -> None:
    """After `fingerprint` was linked to `device_id`: one statement (on PostgreSQL two, the
    key's lock first), in the linking transaction."""
    if conn.dialect.name == "postgresql":
        _LOCK_KEY.all(conn, {"fingerprint": fingerprint})
    _RECORD_LINKED.execute(conn, {"device": device_id, "fingerprint": fingerprint})


def recheck_owners(conn: Connection, device_id: str, previous_owner: int | None) -> None:
    """After the device changed owner: its keys shared with the new owner's devices are
    recorded, and the previous owner's records it no longer makes true are removed."""
    _RECORD_DEVICE.execute(conn, {"device": device_id})
    if previous_owner is None:
        return
    keys = conn.execute(select(s.key_id).where(
        s.owner_id == previous_owner, s.key_id.in_(
            select(c.key_id).join(device_identities, i.fingerprint == c.fingerprint)
            .where(i.device_id == device_id)))).scalars().all()
    for key_id in keys:
        if len(holders(conn, previous_owner, key_id, 2)) < 2:
            _FORGET.execute(conn, {"owner": previous_owner, "key": key_id})


_HOLDERS = (select(d.id, d.name)
            .select_from(certificates.join(device_identities, i.fingerprint == c.fingerprint)
                         .join(devices, d.id == i.device_id))
            .where(c.key_id == bindparam("key"), unindexed(d.owner_id) == bindparam("owner"))
            .limit(bindparam("rows")))
ROWS_PER_DEVICE = 4  # a device holds few certificates of one key (its renewals)


def holders(conn: Connection, owner_id: int, key_id: str, most: int) -> list[DeviceRef]:
    """Up to `most` distinct devices of `owner_id` holding a certificate with `key_id`: the
    key's first certificates, a few per device wanted, read again with four times as many
    only when those rows named too few devices. A key on thousands of devices costs a few
    dozen rows, not thousands; one statement, no server-side cursor (on PostgreSQL a cursor
    costs a round trip per fetch)."""
    rows = most * ROWS_PER_DEVICE
    while True:
        fetched = conn.execute(_HOLDERS, {"key": key_id, "owner": owner_id, "rows": rows}).all()
        found = {device_id: DeviceRef(device_id, name) for device_id, name in fetched}
        if len(found) >= most or len(fetched) < rows:
            return list(found.values())[:most]
        rows *= ROWS_PER_DEVICE
