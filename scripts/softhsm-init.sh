#!/usr/bin/env bash
# Create a SoftHSM2 token for iotpki's CA keys (development, tests, demos).
#
#   scripts/softhsm-init.sh [DIR] [LABEL]      default DIR ./softhsm, LABEL iotpki
#
# Writes DIR/softhsm2.conf and the token store DIR/tokens, initializes a token LABEL with a
# random user PIN (DIR/user-pin, 0600) and SO PIN (DIR/so-pin, 0600), and prints the
# environment that points iotpki at it. The PINs are never printed.
set -euo pipefail
dir=$(realpath -m "${1:-softhsm}")
label=${2:-iotpki}
command -v softhsm2-util >/dev/null || { echo "softhsm2-util missing: apt-get install softhsm2" >&2; exit 1; }
umask 077
mkdir -p "$dir/tokens"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
if softhsm2-util --show-slots 2>/dev/null | grep -Eq "Label:[[:space:]]+$label[[:space:]]*$"; then
    echo "token $label already exists in $dir" >&2
else
    [ -s "$dir/user-pin" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/user-pin"
    [ -s "$dir/so-pin" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/so-pin"
    softhsm2-util --init-token --free --label "$label" \
        --pin "$(cat "$dir/user-pin")" --so-pin "$(cat "$dir/so-pin")" >/dev/null
    echo "initialized token $label in $dir" >&2
fi
module=/usr/lib/softhsm/libsofthsm2.so
cat <<ENV
export SOFTHSM2_CONF=$dir/softhsm2.conf
export IOTPKI_PKCS11_MODULE=$module
export IOTPKI_PKCS11_TOKEN='pkcs11:token=$label'
export IOTPKI_PKCS11_PIN_FILE=$dir/user-pin
export IOTPKI_KEY_BACKEND=pkcs11
ENV
