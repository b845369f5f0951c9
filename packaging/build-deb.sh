#!/bin/bash
# Builds dane-hook_VERSION_all.deb from the working tree without touching it: copies the tree
# (less .git, virtualenvs and caches) to a temporary directory with packaging/debian/ as its
# debian/, runs `dpkg-buildpackage -us -uc -b` there with the system's tools, and copies the
# .deb (and .buildinfo, .changes) to OUTDIR (default: dist/, which git ignores).
#
# Usage: packaging/build-deb.sh [OUTDIR]
# Needs the Build-Depends of packaging/debian/control; on Debian 12:
#   apt-get install debhelper dh-python pybuild-plugin-pyproject python3-all \
#       python3-setuptools python3-cryptography python3-dnspython dpkg-dev
# Prints the path of the .deb on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
outdir=${1:-$root/dist}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/dane-hook-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
source_dir="$work/dane-hook"
mkdir "$source_dir"
tar -C "$root" -cf - \
    --exclude=./.git --exclude=./.venv --exclude=./dist --exclude=./build \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache \
    --exclude=.pytest_cache --exclude=.hypothesis --exclude=.benchmarks --exclude=./debian \
    . | tar -C "$source_dir" -xf -
cp -a "$root/packaging/debian" "$source_dir/debian"

# The system's python3 and tools, not a pyenv shim or a virtualenv found first on PATH.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PYENV_VERSION
(cd "$source_dir" && dpkg-buildpackage -us -uc -b) >&2

shopt -s nullglob
built=("$work"/dane-hook_*.deb)
if [ ${#built[@]} -ne 1 ]; then
    echo "build-deb.sh: expected one .deb, found ${#built[@]}" >&2
    exit 1
fi
cp "$work"/dane-hook_*.deb "$work"/dane-hook_*.buildinfo "$work"/dane-hook_*.changes "$outdir"/
echo "$outdir/$(basename "${built[0]}")"
