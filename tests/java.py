"""BouncyCastle (Debian `libbcpkix-java`) and the JDK as interop peers: one Java source per
protocol (`tests/<protocol>/java/*.java`) is compiled with javac once per module and run
with java, BouncyCastle's jars on the class path. Shared by the CMP, EST and CMC suites."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI

JARS = [Path("/usr/share/java") / f"{name}.jar" for name in ("bcpkix", "bcprov", "bcutil")]


def compile_java(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`source` compiled into a fresh directory (returned). Without the JDK or BouncyCastle
    the test skips, and fails in CI (scripts/system-packages.sh installs them)."""
    missing = [str(j) for j in JARS if not j.exists()]
    if missing or not shutil.which("javac"):
        reason = (f"BouncyCastle or the JDK is missing ({missing}): "
                  "run scripts/system-packages.sh")
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp(f"java-{source.stem}")
    subprocess.run(["javac", "-d", str(out), "-cp", ":".join(map(str, JARS)), str(source)],
                   check=True, capture_output=True, timeout=300)
    return out


def java_command(classes: Path, main: str, *arguments: str) -> list[str]:
    """The command line that runs `main` from `classes` with BouncyCastle."""
    return ["java", "-cp", ":".join([str(classes), *map(str, JARS)]), main, *arguments]
