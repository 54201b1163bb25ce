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


@dataclass
class CLIState:
    data_dir: Path | None = None
    database_url: str | None = None
    public_url: str | None = None
    insecure_keys: bool = False
    _pki: PKI | None = field(default=None, repr=False)

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
                raise ConfigurationError(
                    f"no iotpki database in {settings.data_dir}"
                    + (f" ({settings.database_url})" if settings.database_url else "")
                    + ": run 'iotpki init' first, or point --data-dir / IOTPKI_DATA_DIR "
                    "at an existing one")
            self._pki = build_pki(settings)
        return self._pki

    def close(self) -> None:
        """Release the PKI's database connections (idempotent)."""
        if self._pki is not None:
            self._pki.close()
            self._pki = None


def state(ctx: typer.Context) -> CLIState:
    root = ctx.find_root()
    assert isinstance(root.obj, CLIState)
    return root.obj
