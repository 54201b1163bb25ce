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
.venv/bin/pytest -n 2 --dist loadscope --durations=15 "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
if [ "$status" = 0 ] && [ "$#" = 0 ]; then
    # The key path again with every CA key on a SoftHSM2 token (tests/hsm.py), on SQLite:
    # what signs with or makes a hosted key — issuance and authorities, OCSP and CRL signing
    # (and openssl reading the answers), EST enrollment and the EST §4.4.2 key delivery,
    # CMP protection and central key generation, the SCEP RA key (signs CertReps, decrypts
    # requests inside the token). Codecs, refusals, peers over TLS and the
    # PostgreSQL half touch no token and are not repeated (docs/testing.md).
    IOTPKI_TEST_KEY_BACKEND=pkcs11 .venv/bin/pytest -n 2 --dist loadscope --durations=5 -m "not postgres" \
        tests/test_issuance.py tests/test_authorities.py \
        tests/revocation/test_ocsp.py tests/revocation/test_crl.py \
        tests/revocation/test_ocsp_interop.py \
        tests/est/test_enroll.py tests/est/test_serverkeygen_encrypted.py \
        tests/cmp/test_openssl_enrollment.py tests/cmp/test_central_keygen.py \
        tests/scep/test_operations.py
    status=$?
fi
exit "$status"
