"""Post-renewal hooks: commands run after each new certificate (reload a service, ...),
each with a timeout; a hook that fails or hangs is reported, never blocks the agent."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from iotpki.agent.config import Hook


@dataclass(frozen=True)
class HookResult:
    command: tuple[str, ...]
    returncode: int | None  # None: killed after the timeout, or could not start
    output: str


def run_hooks(hooks: Sequence[Hook], environment: dict[str, str]) -> list[HookResult]:
    """Run each hook with `environment` added (IOTPKI_AGENT_CERT, ..._KEY, ..._CHAIN)."""
    results = []
    for hook in hooks:
        try:
            done = subprocess.run(list(hook.command), env={**os.environ, **environment},
                                  capture_output=True, text=True, timeout=hook.timeout,
                                  check=False)
            results.append(HookResult(hook.command, done.returncode,
                                      (done.stdout + done.stderr)[-2000:]))
        except subprocess.TimeoutExpired:
            results.append(HookResult(hook.command, None, f"killed after {hook.timeout:g} s"))
        except OSError as exc:
            results.append(HookResult(hook.command, None, f"could not start: {exc}"))
    return results
