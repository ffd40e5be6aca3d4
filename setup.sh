#!/usr/bin/env bash
# Installs everything rram-hil needs on a fresh Debian machine: ngspice, chromium and chromedriver (apt;
# the browser for the live view's tests) and the Python packages. Installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v ngspice >/dev/null 2>&1 || missing+=(ngspice)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[dev]"
