#!/bin/bash
# The whole test suite on a Debian 12 machine (root, or a user with sudo): installs what the tests
# need (Debian tools used as oracles and servers, a virtualenv with the test dependencies), then
# runs ruff, mypy --strict and pytest. Idempotent: a second run installs nothing new.
# Extra arguments go to pytest, e.g. `tests/run.sh -k records`.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
    openssl ldnsutils gnutls-bin hash-slinger            # independent TLSA tools (oracles)
    knot knot-dnsutils unbound bind9-dnsutils            # signed zone + validating resolver
    pebble                                               # ACME test CA
    pdns-server pdns-backend-sqlite3 bind9               # PowerDNS publisher; tsig-keygen
    postfix dovecot-imapd dovecot-pop3d socat            # live probe targets; acme.sh standalone
    python3-venv ca-certificates curl
)
missing=()
for package in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "tests/run.sh: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    # The servers the tests run (knot, unbound, named, pdns, postfix) are started by the tests
    # on loopback ports: keep the packages' own services from starting at install time.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    [ -z "$policy" ] || $SUDO rm -f "$policy"
fi

VENV=${DANE_HOOK_TEST_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'

export PATH="$PWD/$VENV/bin:$PATH"
ruff check .
ruff format --check .
mypy
pytest "$@"
