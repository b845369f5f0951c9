#!/bin/bash
# Installs dane-hook into its own virtualenv (default /opt/dane-hook) that also sees the system's
# Python packages (Debian's python3-cryptography, -dnspython, -acme, -josepy when certbot is
# installed from Debian), and links the `dane-hook` command into /usr/local/bin.
# Usage: ./install.sh [PREFIX [BINDIR]]
set -euo pipefail
cd "$(dirname "$0")"
PREFIX=${1:-/opt/dane-hook}
BINDIR=${2:-/usr/local/bin}
# The system's interpreter, not the first python3 on PATH: a pyenv or conda python3 under a
# 0700 home makes a venv that other users (root's certbot hooks, the timer) cannot run, and
# only the system's sees Debian's packages. PYTHON=/path/to/python3 chooses another.
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then
        PYTHON=/usr/bin/python3
    else
        PYTHON=$(command -v python3)
    fi
fi
# stderr: stdout is the installed command's --version line.
echo "install.sh: building $PREFIX with $PYTHON ($("$PYTHON" --version 2>&1))" >&2
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits venv/ensurepip out of python3.
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
"$PYTHON" -m venv --system-site-packages "$PREFIX"
"$PREFIX/bin/python" -m pip install -q --disable-pip-version-check .
mkdir -p "$BINDIR"
ln -sf "$PREFIX/bin/dane-hook" "$BINDIR/dane-hook"
"$BINDIR/dane-hook" --version
