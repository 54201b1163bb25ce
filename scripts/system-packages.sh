#!/usr/bin/env bash
# Debian packages the interop tests drive as real peers. Installs only what is missing.
set -euo pipefail
needed=()
command -v openssl >/dev/null || needed+=(openssl)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || needed+=(mosquitto)
command -v mosquitto_pub >/dev/null || needed+=(mosquitto-clients)  # iotpki demo (tests/demo)
command -v curl >/dev/null || needed+=(curl)  # EST interop tests (tests/est)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || needed+=(nginx-light)  # EST proxy mode
command -v softhsm2-util >/dev/null || needed+=(softhsm2)  # PKCS#11 token for CA keys (tests)
command -v pkcs11-tool >/dev/null || needed+=(opensc)  # independent PKCS#11 peer (tests)
# BouncyCastle's EST client (tests/est/test_bouncycastle.py), compiled with the JDK's javac.
[ -f /usr/share/java/bcpkix.jar ] || needed+=(libbcpkix-java libbcprov-java libbcutil-java)
command -v javac >/dev/null || needed+=(default-jdk-headless)
command -v wrk >/dev/null || needed+=(wrk)  # load generator of bench/ocsp.py (smoke run in tests)
# A primary, a synchronous standby and a read replica of our own (tests/topology.py).
[ -x /usr/lib/postgresql/15/bin/pg_basebackup ] || needed+=(postgresql-15)
# SCEP peers (tests/scep): the Go client (package `scep`: scepclient) and certmonger's helper.
command -v scepclient >/dev/null || needed+=(scep)
[ -x /usr/lib/certmonger/scep-submit ] || [ -x /usr/libexec/certmonger/scep-submit ] \
    || needed+=(certmonger)
# ACME peers (tests/acme): two clients, a DNS server for dns-01 and its update tool.
command -v certbot >/dev/null || needed+=(certbot python3-certbot-dns-rfc2136)
command -v lego >/dev/null || needed+=(lego)
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || needed+=(knot)
command -v knsupdate >/dev/null || needed+=(knot-dnsutils)
# The web console's browser tests (tests/console): headless Chromium driven over chromedriver.
command -v chromium >/dev/null || needed+=(chromium)
command -v chromedriver >/dev/null || needed+=(chromium-driver)
if [ ${#needed[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing system packages: ${needed[*]} (run as root or install them)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >/dev/null
fi
