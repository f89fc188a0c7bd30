#!/bin/sh
# Installs Debian's Chromium for the Workbench browser tests when it is missing.
# Playwright cannot download its own browsers here; the tests use /usr/bin/chromium.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo sh -c 'apt-get update && apt-get install -y chromium'
    fi
    echo "ensure-chromium: /usr/bin/chromium is missing; run as root to install it" >&2
    exit 1
fi
apt-get update && apt-get install -y chromium
