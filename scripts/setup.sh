#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv of this checkout and install iec104 into it,
# editable, with the extras named as arguments (`bash scripts/setup.sh test`). Then
# `. .venv/bin/activate` puts `iec104` and that Python on PATH (or call .venv/bin/iec104).
#
# Why a venv: the system Python of Debian 12+ and Ubuntu 23.04+ refuses `pip install`
# (externally-managed-environment, PEP 668), and a venv works the same everywhere else,
# also when the caller is inside another venv or runs a pyenv Python.
#
# Python: $PYTHON if set, else the first of python3, python3.13, python3.12, python3.11 that is
# >= 3.11. When it cannot make a venv for lack of ensurepip (Debian/Ubuntu without the
# python3.X-venv package), that package is installed with apt-get (root or sudo).
# Running again is cheap: pip runs only when pyproject.toml or the extras changed since the last
# install, or when the venv cannot import iec104. A broken .venv (e.g. left by a failed
# `python3 -m venv`) is made anew.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

VENV=.venv
EXTRAS=("$@")
me=scripts/setup.sh

fail() { echo "$me: $*" >&2; exit 1; }

# The interpreter to build the venv from (an absolute path), or nothing.
find_python() {
    local candidates=(python3 python3.13 python3.12 python3.11) name
    [ -n "${PYTHON:-}" ] && candidates=("$PYTHON")
    for name in "${candidates[@]}"; do
        if command -v "$name" >/dev/null 2>&1 &&
            "$name" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

# A usable venv: its Python runs, is >= 3.11 and has pip.
venv_ok() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" -c 'import sys, pip; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1
}

make_venv() {
    local python
    python=$(find_python) || fail "iec104 needs Python >= 3.11; found none among" \
        "${PYTHON:-python3 python3.13 python3.12 python3.11} (set PYTHON=/path/to/python3.11)"
    if ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
        # Debian/Ubuntu ship ensurepip (which puts pip into a new venv) in python3.X-venv
        local version
        version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        if [ "$("$python" -c 'import sys; print(sys.base_prefix)')" != /usr ]; then
            fail "$python cannot create a virtual environment with pip (no ensurepip module)"
        fi
        apt_install "python$version-venv" ||
            fail "'$python -m venv' needs the Debian package python$version-venv:" \
                "run 'sudo apt-get install python$version-venv' and try again"
    fi
    echo "creating the virtual environment $VENV with $python ..." >&2
    "$python" -m venv "$VENV" >&2 || fail "'$python -m venv $VENV' failed"
}

if [ -e "$VENV" ] && ! venv_ok; then
    [ -f "$VENV/pyvenv.cfg" ] || fail "$VENV exists but is not a virtual environment: move it away"
    echo "$VENV is broken (no working Python >= 3.11 with pip): making it anew" >&2
    rm -rf "$VENV"
fi
[ -e "$VENV" ] || make_venv

# One stamp per extra ("base" for the package itself) holding the sha256 of the pyproject.toml
# it was installed from.
digest=$("$VENV/bin/python" -c \
    'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
needed=false
for extra in base ${EXTRAS[@]+"${EXTRAS[@]}"}; do
    [ "$(cat "$VENV/.iec104-installed-$extra" 2>/dev/null)" = "$digest" ] || needed=true
done
# -I: import from site-packages only, not from the current directory
"$VENV/bin/python" -I -c 'import iec104' >/dev/null 2>&1 || needed=true

if $needed; then
    spec=.
    if [ ${#EXTRAS[@]} -gt 0 ]; then
        spec=".[$(IFS=,; echo "${EXTRAS[*]}")]"
    fi
    echo "installing iec104 ($spec) and its dependencies into $VENV (the first time takes" \
        "a few minutes) ..." >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec"
    for extra in base ${EXTRAS[@]+"${EXTRAS[@]}"}; do
        echo "$digest" > "$VENV/.iec104-installed-$extra"
    done
    echo "iec104 is installed in $VENV: '. $VENV/bin/activate' puts it on PATH" >&2
fi
