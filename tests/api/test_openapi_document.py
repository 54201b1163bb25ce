"""The OpenAPI document published in docs/api/ is the one the code serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_published_reference_is_current() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "export_openapi.py"),
                           "--check"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
