"""python -m fuzz [--target est|ocsp|crl|rest|manifest|scep|cmc|all] [--count 100000] [--seed 1]"""

from __future__ import annotations

import argparse
import random
import sys

from fuzz.harness import Report, applications, demo_pki, run
from fuzz.targets import TARGETS


def fuzz_target(target: str, count: int, seed: int, progress: int = 0) -> Report:
    inputs, listener, judge = TARGETS[target]
    with demo_pki() as pki:
        https, http = applications(pki)
        return run(target, https if listener == "https" else http,
                   inputs(pki, random.Random(seed)), count, judge, progress)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", default="all", choices=[*TARGETS, "all"])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--progress", type=int, default=0, help="print a line every N inputs")
    options = parser.parse_args()
    failed = False
    for target in TARGETS if options.target == "all" else [options.target]:
        report = fuzz_target(target, options.count, options.seed, options.progress)
        print(report.line(), flush=True)
        for request in report.failures[:5]:
            print(f"  fault: {request.method} {request.path[:120]} body={request.body[:80]!r}")
        failed |= bool(report.server_errors or report.tracebacks)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
