#!/usr/bin/env bash
# Install what the test suite needs on a fresh Debian/Ubuntu machine, then run it.
# Debian's tshark (the reference dissector the tests use as an independent oracle), chromium
# (renders the HTML report) and gcc/cmake/make (build lib60870-C for the file-transfer interop
# test) need root or sudo when missing. iec104 and its test dependencies go into the virtual
# environment .venv (scripts/setup.sh), which pytest runs in, whatever Python or venv the
# caller has. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if ! command -v tshark >/dev/null 2>&1; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
        | as_root debconf-set-selections
    apt_install tshark
fi
command -v chromium >/dev/null 2>&1 || apt_install chromium
# Spark (the README's dataset recipe, tests/test_dataset_engines.py) runs on a JVM
command -v java >/dev/null 2>&1 || apt_install default-jre-headless
# gcc, cmake and make build lib60870-C's file service from c104's sdist (tests/support/lib60870.py)
for tool in gcc cmake make; do
    command -v "$tool" >/dev/null 2>&1 || { apt_install gcc cmake make; break; }
done

bash scripts/setup.sh test
set +u  # activate reads unset variables
. .venv/bin/activate
set -u
exec python -m pytest "$@"
