#!/usr/bin/env bash
# Installs voxcore and everything its tests and benchmarks need, on Debian/Ubuntu (as root).
# Safe to run again: it installs only what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs="g++ cmake ninja-build libzstd-dev liblz4-dev libblosc-dev libdeflate-dev libisal-dev zlib1g-dev libjpeg-dev libgtest-dev strace"
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  pkgs="$pkgs python3 python3-dev python3-pip python3-venv"
fi
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
# Python headers for the interpreter in use (a distribution python needs python3-dev).
if ! python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-dev
fi

export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
python3 -m pip install -q ".[test,bench]"
if command -v pyenv >/dev/null; then pyenv rehash; fi

# iohub, an oracle of the plate tests (tests/test_plate_iohub.py), is built on zarr-python 2 and
# cannot live beside zarr-python 3: it goes into its own directory, which those tests put first
# on a child interpreter's path.
if [ ! -d build/oracles/iohub/iohub ]; then
  # (pip's notes about the main environment's own conflicts are not about this directory)
  python3 -m pip install -q --target build/oracles/iohub "iohub>=0.2,<0.3" 2>&1 \
    | { grep -v -e "dependency resolver" -e "which is incompatible" -e "^WARNING" || true; }
fi
