# shellcheck shell=bash
# Sourced by bin/tunedstack and bin/test: the project's virtualenv (the one Pulumi.yaml names)
# and the Debian packages a step needs, installed once and only when missing.

setup_venv() {  # $1: pip extras, e.g. "dev" or ""
    local extras=${1:-} stamp=.venv/.tunedstack-installed
    local spec="." want
    [ -n "$extras" ] && spec=".[$extras]"
    want="$spec $(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -x .venv/bin/python ]; then
        # Debian and Ubuntu ship venv's pip bootstrap separately.
        python3 -c 'import ensurepip' 2> /dev/null || setup_debs python3-venv
        python3 -m venv .venv
    fi
    if [ ! -f "$stamp" ] || ! grep -qxF "$want" "$stamp"; then
        echo "tunedstack: installing $spec into .venv (once; about a minute; log: .venv/pip.log)" >&2
        { .venv/bin/python -m pip install --upgrade pip \
            && .venv/bin/python -m pip install -e "$spec"; } > .venv/pip.log 2>&1 \
            || { tail -20 .venv/pip.log >&2; return 1; }
        echo "$want" >> "$stamp"
    fi
}

setup_debs() {  # $@: Debian package names
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "missing Debian packages (run as root to install them): ${missing[*]}" >&2
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        > /tmp/tunedstack-apt.log 2>&1 || { tail -20 /tmp/tunedstack-apt.log >&2; return 1; }
}
