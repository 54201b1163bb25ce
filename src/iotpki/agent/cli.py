"""`iotpki-agent enroll|renew|status|run`: the device agent's command (argparse, stdlib).

Exit codes: 0 done, 1 enrollment or renewal failed (the reason on stderr), 2 bad usage
or configuration.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from iotpki.agent.config import ConfigError, load_config
from iotpki.agent.device import Agent, StepResult
from iotpki.agent.factory import build_agent
from iotpki.agent.keystore import Identity
from iotpki.wire.errors import PKIError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iotpki-agent", description=(
        "Device agent: enrollment and automatic renewal over EST, CMP or ACME."))
    parser.add_argument("--config", "-c", type=Path, required=True, help="agent.toml")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("enroll", help="first enrollment with the configured credentials")
    commands.add_parser("renew", help="renew now with the current certificate")
    commands.add_parser("status", help="current certificate and the next renewal")
    run = commands.add_parser("run", help="renew automatically until stopped")
    run.add_argument("--once", action="store_true", help="one check, then exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        agent = build_agent(load_config(arguments.config))
    except (ConfigError, PKIError) as exc:
        print(f"iotpki-agent: configuration: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(agent, arguments)
    except (PKIError, OSError, ValueError) as exc:
        print(f"iotpki-agent: {arguments.command} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        agent.close()


def _dispatch(agent: Agent, arguments: argparse.Namespace) -> int:
    if arguments.command in ("enroll", "renew"):
        identity = agent.enroll() if arguments.command == "enroll" else agent.renew()
        _print(arguments.json, _identity_fields(identity, agent))
        return 0 if all(h.returncode == 0 for h in agent.last_hooks) else 1
    if arguments.command == "status":
        _print(arguments.json, agent.status())
        return 0
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    failed = []

    def report(result: StepResult) -> None:
        fields = {"action": result.decision.action.value, "at": result.decision.at.isoformat(),
                  "reason": result.decision.reason, "error": result.error}
        if result.error:
            failed.append(result.error)
        _print(arguments.json, fields)

    agent.run(stop, max_steps=1 if arguments.once else None, on_step=report)
    return 1 if arguments.once and failed else 0


def _identity_fields(identity: Identity, agent: Agent) -> dict[str, Any]:
    certificate = identity.certificate
    return {"subject": certificate.subject.rfc4514_string(),
            "serial": f"{certificate.serial_number:x}",
            "not_after": certificate.not_valid_after_utc.isoformat(),
            "version": identity.version, "chain_file": str(identity.chain_file),
            "key_file": str(identity.key_file),
            "renew_at": agent.state.renew_at.isoformat() if agent.state.renew_at else None,
            "hooks": [{"command": list(h.command), "returncode": h.returncode}
                      for h in agent.last_hooks]}


def _print(as_json: bool, fields: dict[str, Any]) -> None:
    if as_json:
        print(json.dumps(fields), flush=True)
    else:
        print("\n".join(f"{k}: {v}" for k, v in fields.items() if v is not None), flush=True)


if __name__ == "__main__":
    sys.exit(main())
