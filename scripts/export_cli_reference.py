"""Write the `iotpki` command reference (docs/cli-reference.md) from the CLI itself.

    PYTHONPATH=src python scripts/export_cli_reference.py [--check]

Every command and sub-command with its usage, help text, arguments and options, as Click
knows them. `--check` fails (exit 1) if the file is not what the code produces now; the
test suite runs it, so the reference never drifts from the CLI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from typer.core import TyperGroup

from iotpki.cli.lazy import COMMANDS, load
from iotpki.cli.main import app

OUT = Path(__file__).resolve().parents[1] / "docs" / "cli-reference.md"
HEADER = """# `iotpki` command reference

Generated from the CLI by `scripts/export_cli_reference.py` (a test checks it is current);
[cli.md](cli.md) explains the commands, their output and exit codes with examples.
"""


def reference() -> str:
    import typer.main

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    names = [*root.commands, *COMMANDS]
    parts = [HEADER, _command("iotpki", root, top=True, names=names)]
    for name in names:
        command = root.commands[name] if name in root.commands else load(name)
        parts.append(_tree(f"iotpki {name}", command))
    return "\n".join(parts)


def _tree(path: str, command: Any) -> str:
    if isinstance(command, TyperGroup):
        subs = [_tree(f"{path} {n}", c) for n, c in command.commands.items()]
        return "\n".join([_command(path, command), *subs])
    return _command(path, command)


def _command(path: str, command: Any, top: bool = False, names: list[str] | None = None) -> str:
    lines = [f"{'#' if top else '##'}{'' if top else '#' * (path.count(' ') - 1)} `{path}`", ""]
    text = " ".join((command.help or "").split())
    if text:
        lines += [text, ""]
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        label = ", ".join(param.opts) if param.param_type_name == "option" else \
            param.name.upper()
        metavar = param.metavar or ""
        required = "required" if param.required else ""
        default = "" if param.required or param.default in (None, [], (), False) \
            else f"default {param.default}"
        kind = "; ".join(x for x in (required, default) if x)
        help_text = " ".join((getattr(param, "help", "") or "").split())
        rows.append(f"| `{label}{' ' + metavar if metavar else ''}` | {kind} | {help_text} |")
    if rows:
        lines += ["| parameter | | meaning |", "|---|---|---|", *rows, ""]
    if isinstance(command, TyperGroup):
        listed = names if names is not None else list(command.commands)
        lines += ["Commands: " + ", ".join(f"`{n}`" for n in listed), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    text = reference().rstrip() + "\n"
    if parser.parse_args().check:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit(f"{OUT} is out of date: run scripts/export_cli_reference.py")
        return
    OUT.write_text(text)


if __name__ == "__main__":
    main()
