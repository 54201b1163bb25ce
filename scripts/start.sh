#!/usr/bin/env bash
# Quick start: install, create the story's three organizations and CAs in ./iotpki-data
# (SQLite, software keys), issue a building-42 operational certificate, verify it, and
# serve until stopped (Ctrl-C): OCSP, CRLs, CA certificates and CMP on
# http://127.0.0.1:8080, EST on https://127.0.0.1:8443.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export IOTPKI_DATA_DIR="${IOTPKI_DATA_DIR:-$PWD/iotpki-data}"
iotpki=.venv/bin/iotpki
http_port="${IOTPKI_HTTP_PORT:-8080}"
https_port="${IOTPKI_HTTPS_PORT:-8443}"
# The public URL certificates name for CRLs and OCSP: where this script serves (kept in
# $IOTPKI_DATA_DIR/settings.yaml; 'iotpki config set public-url URL' changes it).
"$iotpki" init --demo --public-url "${IOTPKI_PUBLIC_URL:-http://127.0.0.1:$http_port}"
"$iotpki" authority list
work="$IOTPKI_DATA_DIR/quickstart"
mkdir -p "$work"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=sensor-1" \
    -keyout "$work/sensor-1.key" -out "$work/sensor-1.csr" 2>/dev/null
"$iotpki" cert issue --ca operatorco-operations --profile operational --csr "$work/sensor-1.csr" \
    --san uri:urn:iotpki:domain:building-42.operator.example \
    --san dns:sensor-1.building-42.operator.example --out "$work/sensor-1.pem"
"$iotpki" authority export operatorco-operations --out "$work/chain.pem"
openssl verify -x509_strict -CAfile <(awk '/BEGIN/{n++} n==2' "$work/chain.pem") \
    -untrusted <(awk '/BEGIN/{n++} n==1' "$work/chain.pem") "$work/sensor-1.pem"
"$iotpki" audit verify
echo "serving http://127.0.0.1:$http_port (OCSP, CRL, CMP) and https://127.0.0.1:$https_port (EST); Ctrl-C stops"
exec "$iotpki" serve --http-port "$http_port" --https-port "$https_port"
