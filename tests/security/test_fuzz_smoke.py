"""The fuzz runs of `fuzz/` (issue 15), a few hundred inputs each: no 5xx, no traceback in
the log. The full runs (100,000 inputs each) are `python -m fuzz`; their results are in
docs/security.md."""

from __future__ import annotations

import pytest
from fuzz.__main__ import fuzz_target
from fuzz.targets import TARGETS

# each manifest input decodes and verifies a CMS SignedData; each CMC answer is signed
SMOKE = {"manifest": 150, "cmc": 100}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_smoke(target: str) -> None:
    report = fuzz_target(target, SMOKE.get(target, 400), seed=7)
    assert report.inputs == SMOKE.get(target, 400)
    assert report.server_errors == 0, [f"{r.method} {r.path[:100]}" for r in report.failures]
    assert report.tracebacks == 0
    # OCSP answers everything with 200 (the OCSP status inside varies); a mutated manifest
    # is refused with 422 (the reasons vary: decoding, signature, trust).
    assert len(report.statuses) > 1 or target in ("ocsp", "manifest")
