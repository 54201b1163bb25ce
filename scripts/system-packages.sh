#!/usr/bin/env bash
# Debian packages the interop tests drive as real peers. Installs only what is missing.
set -euo pipefail
needed=()
command -v openssl >/dev/null || needed+=(openssl)
command -v mosquitto >/dev/null || needed+=(mosquitto)
if [ ${#needed[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing system packages: ${needed[*]} (run as root or install them)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >/dev/null
fi
