"""Settings from the command line and the environment (`IOTPKI_*`), with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("iotpki-data")
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None  # None: SQLite in the data directory
    public_url: str = DEFAULT_PUBLIC_URL
    allow_unencrypted_keys: bool = False
    cmp_check_after: int | None = None  # CMP pollRep checkAfter (s); None: the approval's own
    cmp_confirm_timeout: int = 600  # s a certificate may await certConf before it is revoked

    @property
    def profiles_file(self) -> Path:
        return self.data_dir / "profiles.yaml"

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "keys"

    @classmethod
    def from_environment(
        cls, data_dir: Path | None = None, database_url: str | None = None,
        public_url: str | None = None, allow_unencrypted_keys: bool = False,
    ) -> Settings:
        env = os.environ
        return cls(
            data_dir=(data_dir or Path(env.get("IOTPKI_DATA_DIR", DEFAULT_DATA_DIR))).resolve(),
            database_url=database_url or env.get("IOTPKI_DATABASE_URL") or None,
            public_url=public_url or env.get("IOTPKI_PUBLIC_URL", DEFAULT_PUBLIC_URL),
            allow_unencrypted_keys=allow_unencrypted_keys
            or env.get("IOTPKI_INSECURE_UNENCRYPTED_KEYS") == "1",
            cmp_check_after=int(env["IOTPKI_CMP_CHECK_AFTER"])
            if env.get("IOTPKI_CMP_CHECK_AFTER") else None,
            cmp_confirm_timeout=int(env.get("IOTPKI_CMP_CONFIRM_TIMEOUT") or 600),
        )
