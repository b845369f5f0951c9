#!/bin/bash
# Installs dane-hook into its own virtualenv (default /opt/dane-hook) that also sees the system's
# Python packages (Debian's python3-cryptography, -dnspython, -acme, -josepy when certbot is
# installed from Debian), and links the `dane-hook` command into /usr/local/bin.
# Usage: ./install.sh [PREFIX [BINDIR]]
set -euo pipefail
cd "$(dirname "$0")"
PREFIX=${1:-/opt/dane-hook}
BINDIR=${2:-/usr/local/bin}
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits venv/ensurepip out of python3.
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
python3 -m venv --system-site-packages "$PREFIX"
"$PREFIX/bin/python" -m pip install -q --disable-pip-version-check .
mkdir -p "$BINDIR"
ln -sf "$PREFIX/bin/dane-hook" "$BINDIR/dane-hook"
"$BINDIR/dane-hook" --version
