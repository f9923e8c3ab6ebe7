#!/usr/bin/env bash
# Install what the test suite needs on a fresh Debian/Ubuntu machine, then run it.
# Needs root (or sudo) only to install tshark, the reference dissector the tests use as
# an independent oracle. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v tshark >/dev/null 2>&1; then
    echo "installing tshark (Debian package) ..." >&2
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
        | as_root debconf-set-selections
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1; then
    # headless Chromium renders the HTML report in a test
    echo "installing chromium (Debian package) ..." >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
exec python3 -m pytest "$@"
