"""Global options and the lazily built PKI the sub-commands share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from iotpki.core.errors import ConfigurationError
from iotpki.settings import Settings

if TYPE_CHECKING:
    from iotpki.app import PKI
    from iotpki.core.ca.directory import CertificateDirectory
    from iotpki.store.database import Database


@dataclass
class CLIState:
    data_dir: Path | None = None
    database_url: str | None = None
    public_url: str | None = None
    insecure_keys: bool = False
    _pki: PKI | None = field(default=None, repr=False)
    _database: Database | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return Settings.from_environment(
            self.data_dir, self.database_url, self.public_url, self.insecure_keys)

    def pki(self, create: bool = False) -> PKI:
        """The PKI of the data directory. Only `init` (create=True) may create the database:
        any other command on a directory without one is a mistyped path, not a new PKI."""
        if self._pki is None:
            from iotpki.app import build_pki, database_exists

            settings = self.settings
            if not create and not database_exists(settings):
                raise _no_database(settings)
            self._pki = build_pki(settings)
        return self._pki

    def certificates(self) -> CertificateDirectory:
        """The certificate directory alone, for commands that only read certificates: the
        database without the key ring, profiles and services `pki()` builds, so `cert list`
        imports and builds a fraction of it (docs/performance.md)."""
        from iotpki.core.ca.directory import CertificateDirectory

        if self._pki is not None:
            return self._pki.certificates
        if self._database is None:
            self._database = _open_existing(self.settings)
        return CertificateDirectory(self._database.read_unit_of_work)

    def close(self) -> None:
        """Release the PKI's database connections (idempotent)."""
        if self._pki is not None:
            self._pki.close()
            self._pki = None
        if self._database is not None:
            self._database.dispose()
            self._database = None


def _no_database(settings: Settings) -> ConfigurationError:
    return ConfigurationError(
        f"no iotpki database in {settings.data_dir}"
        + (f" ({settings.database_url})" if settings.database_url else "")
        + ": run 'iotpki init' first, or point --data-dir / IOTPKI_DATA_DIR at an existing one")


def _open_existing(settings: Settings) -> Database:
    """The data directory's database, brought to the current schema as every command does;
    refused (and nothing created) when there is none."""
    from iotpki.store.database import (
        Database,
        private_directory,
        private_sqlite_files,
        sqlite_url,
    )

    url = settings.database_url or sqlite_url(settings.data_dir)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise _no_database(settings)
    private_directory(settings.data_dir)
    if settings.database_url is None:
        private_sqlite_files(settings.data_dir)
    database = Database(url)
    try:
        if database.schema_revision() is None:
            raise _no_database(settings)
        database.migrate_if_needed()
    except BaseException:
        database.dispose()
        raise
    return database


def state(ctx: typer.Context) -> CLIState:
    root = ctx.find_root()
    assert isinstance(root.obj, CLIState)
    return root.obj
