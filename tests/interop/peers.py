"""Drive the external validators we did not write: pkilint and the openssl command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from tests.factories import pem

# RFC 8141 URN syntax: "urn:" NID ":" NSS. pkilint checks URIs with validators.url(), which
# accepts only URLs and so flags every URN (our domain SANs, urn:iotpki:domain:...) as
# pkix.invalid_uri_syntax. We accept that one finding only for values that are valid URNs.
_URN = re.compile(r'^urn:[a-z0-9][a-z0-9-]{0,30}[a-z0-9]:[a-z0-9()+,\-.:=@;$_!*\'%/?#]+$',
                  re.IGNORECASE)


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def pkilint_errors(document: Path, tool: str = "lint_pkix_cert", verb: str = "lint") -> list[str]:
    """ERROR and FATAL findings of a pkilint linter, minus URN false positives."""
    run = subprocess.run([_tool(tool), verb, "-s", "ERROR", "-f", "JSON", str(document)],
                         capture_output=True, text=True, timeout=120)
    if not run.stdout.strip():
        raise AssertionError(f"{tool} printed nothing: {run.stderr}")
    problems = []
    for result in json.loads(run.stdout)["results"]:
        for finding in result["finding_descriptions"]:
            if finding["code"] == "pkix.invalid_uri_syntax" and _is_urn_finding(finding["message"]):
                continue
            problems.append(f"{finding['severity']} {finding['code']} {finding['message']} "
                            f"@ {result['node_path']}")
    return problems


def _is_urn_finding(message: str) -> bool:
    value = message.split('"')[1] if '"' in message else ""
    return bool(_URN.match(value))


def write_pem(path: Path, certificates: Sequence[x509.Certificate]) -> Path:
    path.write_bytes(b"".join(pem(c) for c in certificates))
    return path


def openssl_verify(tmp: Path, leaf: x509.Certificate, chain: Sequence[x509.Certificate],
                   *extra: str) -> subprocess.CompletedProcess[str]:
    """`openssl verify -x509_strict` with the root as the only trust anchor."""
    root = write_pem(tmp / "root.pem", [chain[-1]])
    untrusted = write_pem(tmp / "untrusted.pem", list(chain[:-1]) or [chain[-1]])
    target = write_pem(tmp / "leaf.pem", [leaf])
    return subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", str(root), "-untrusted", str(untrusted),
         *extra, str(target)], capture_output=True, text=True, timeout=60)
