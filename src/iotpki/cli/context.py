"""Global options and the lazily built PKI the sub-commands share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from iotpki.app import PKI, build_pki
from iotpki.settings import Settings


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

    def pki(self) -> PKI:
        if self._pki is None:
            self._pki = build_pki(self.settings)
        return self._pki


def state(ctx: typer.Context) -> CLIState:
    root = ctx.find_root()
    assert isinstance(root.obj, CLIState)
    return root.obj
