#!/usr/bin/env bash
# Installs everything rram-hil needs on a fresh Debian machine: ngspice (apt) and the Python packages.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v ngspice >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ngspice >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[dev]"
