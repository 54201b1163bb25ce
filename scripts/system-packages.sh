#!/usr/bin/env bash
# Debian packages the interop tests drive as real peers. Installs only what is missing.
set -euo pipefail
needed=()
command -v openssl >/dev/null || needed+=(openssl)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || needed+=(mosquitto)
command -v mosquitto_pub >/dev/null || needed+=(mosquitto-clients)  # iotpki demo (tests/demo)
command -v curl >/dev/null || needed+=(curl)  # EST interop tests (tests/est)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || needed+=(nginx-light)  # EST proxy mode
if [ ${#needed[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing system packages: ${needed[*]} (run as root or install them)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >/dev/null
fi
