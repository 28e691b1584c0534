#!/usr/bin/env bash
# Make sure Debian's `chromium` exists at /usr/bin/chromium for the browser test
# (tests/integration/test_ui_browser.py drives it with Playwright from PyPI, pointed at this
# system browser; Playwright's own browser downloads are never used). Idempotent: does nothing
# when chromium runs, otherwise installs Debian's `chromium` package (needs root, or sudo
# without a password). `make test` runs as root here.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

chromium_version() {
    # --headless: never needs a display; the version line proves the binary and its libraries load
    "${CHROMIUM}" --headless --no-sandbox --disable-gpu --version 2>/dev/null
}

if [[ -x "${CHROMIUM}" ]] && version="$(chromium_version)"; then
    echo "==> chromium present (${version})"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ${CHROMIUM} is missing and apt-get is not available: install Chromium by hand" >&2
    exit 1
fi

if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "error: ${CHROMIUM} is missing and this user cannot install it;" >&2
    echo "       run as root: apt-get update && apt-get install -y --no-install-recommends chromium" >&2
    exit 1
fi

echo "==> chromium missing; running: apt-get update && apt-get install -y --no-install-recommends chromium"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [[ -x "${CHROMIUM}" ]] && version="$(chromium_version)"; then
    echo "==> installed chromium (${version})"
else
    echo "error: apt-get installed chromium but ${CHROMIUM} does not run (try: ${CHROMIUM} --headless --version)" >&2
    exit 1
fi
