# Helpers sourced by scripts/setup.sh and scripts/test.sh (bash).

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "$(basename "$0"): needs root or sudo to run: $*" >&2
        return 1
    fi
}

# Install Debian packages quietly. The package lists of a fresh container may be missing or
# stale, so on failure refresh them once and try again.
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$(basename "$0"): not a Debian/Ubuntu system (no apt-get): install $* by hand" >&2
        return 1
    fi
    echo "installing $* (Debian packages) ..." >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    }
}
