#!/usr/bin/env bash
# Install everything the tests need, then lint, type-check, check the layers and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/setup.sh dev
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports
set +e
.venv/bin/pytest -n 2 --durations=15 "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
if [ "$status" = 0 ] && [ "$#" = 0 ]; then
    # The same foundation, EST, CMP and revocation tests with every CA key on a SoftHSM2
    # token (tests/hsm.py), on SQLite: the PKCS#11 backend under the whole issuance path.
    # (The pure codec tests, test_wire_*, touch no key and are not repeated.)
    IOTPKI_TEST_KEY_BACKEND=pkcs11 .venv/bin/pytest -n 2 --durations=5 -m "not postgres" \
        -k "not test_wire_" \
        tests/test_issuance.py tests/test_authorities.py tests/est tests/cmp tests/revocation
    status=$?
fi
exit "$status"
