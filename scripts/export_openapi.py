"""Write the REST API's OpenAPI document and its Markdown reference into docs/api/.

    PYTHONPATH=src python scripts/export_openapi.py [--check]

`--check` fails (exit 1) if the files in docs/ are not what the code produces now; the
test suite runs it, so the published reference never drifts from the code.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from iotpki.app import api_services, build_pki
from iotpki.protocols.rest.app import create_api, openapi_document
from iotpki.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api"
METHODS = ("get", "post", "put", "patch", "delete")


def document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        pki = build_pki(Settings(data_dir=Path(tmp), allow_unencrypted_keys=True))
        try:
            return openapi_document(create_api(api_services(pki)))
        finally:
            pki.close()


def reference(doc: dict[str, Any]) -> str:
    lines = ["# REST API reference", "",
             "Generated from the OpenAPI document ([openapi.json](openapi.json)) by "
             "`scripts/export_openapi.py`; do not edit. How to authenticate, roles, pagination, "
             "idempotency and errors: [../api.md](../api.md).", ""]
    by_tag: dict[str, list[str]] = {}
    for path, operations in doc["paths"].items():
        for method in METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            tag = (operation.get("tags") or ["other"])[0]
            statuses = ", ".join(sorted(operation.get("responses", {})))
            summary = (operation.get("description") or operation.get("summary") or "")
            summary = summary.strip().splitlines()[0] if summary.strip() else ""
            by_tag.setdefault(tag, []).append(
                f"| `{method.upper()}` | `{path}` | {summary} | {statuses} |")
    for tag, rows in by_tag.items():
        lines += [f"## {tag}", "", "| method | path | what | responses |", "|---|---|---|---|",
                  *rows, ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    doc = document()
    wanted = {DOCS / "openapi.json": json.dumps(doc, indent=2, sort_keys=True) + "\n",
              DOCS / "reference.md": reference(doc)}
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run scripts/export_openapi.py", file=sys.stderr)
        return 1 if stale else 0
    DOCS.mkdir(parents=True, exist_ok=True)
    for path, text in wanted.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
