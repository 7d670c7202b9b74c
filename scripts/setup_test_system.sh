#!/usr/bin/env bash
# System packages the test suite needs beyond Python: Debian's Chromium for the web
# viewer's browser test. Installed only when missing; needs root (CI and dev boxes run as
# root). Without root it says what to install and lets the browser test report the gap.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  echo "[setup] /usr/bin/chromium missing: install Debian's 'chromium' package for the browser test" >&2
  exit 0
fi
echo "[setup] installing Debian chromium for the browser test"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null
echo "[setup] $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium installed')"
