# shellcheck shell=bash
# Sourced by bin/tunedstack and bin/test: the project's virtualenv (the one Pulumi.yaml names)
# and the Debian packages a step needs, installed once and only when missing. Each step says
# when it starts (with what it took when measured, and its log) and when it ends.

# What pip took into a new .venv, from a fresh clone with no pip cache (2 vCPUs, Debian 12, the
# package index close by): `rm -rf .venv; PIP_NO_CACHE_DIR=1 bin/tunedstack explain` 26 s, and
# `setup_venv bench` 44 s, `setup_venv dev` 43 s; creating the .venv took 7 s.
_pip_seconds() {  # $1: the extras
    case $1 in
        "") echo 30 ;;
        *) echo 45 ;;
    esac
}

_say() {
    echo "[$(date +%H:%M:%S)] tunedstack: $*" >&2
}

# Runs "$@" with its output in the log file $1. On a terminal a counter shows the seconds so far;
# in a pipe or CI's log only the start and end lines do. A failure shows the log's last lines.
_logged() {
    local log=$1 ticker="" rc=0 started=$SECONDS
    shift
    if [ -t 2 ] && [ -z "${CI:-}" ] && [ "${TERM:-dumb}" != dumb ]; then
        (while sleep 1; do printf '\r  %d s' $((SECONDS - started)) >&2; done) &
        ticker=$!
    fi
    "$@" > "$log" 2>&1 || rc=$?
    if [ -n "$ticker" ]; then
        kill "$ticker" 2> /dev/null || true
        wait "$ticker" 2> /dev/null || true
        printf '\r\033[K' >&2
    fi
    if [ "$rc" != 0 ]; then
        tail -20 "$log" >&2
        _say "failed after $((SECONDS - started)) s (exit $rc; log: $log)"
        return "$rc"
    fi
    _say "done in $((SECONDS - started)) s"
}

_pip_install() {  # $1: the pip spec
    .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e "$1"
}

setup_venv() {  # $1: pip extras, e.g. "dev" or ""
    local extras=${1:-} stamp=.venv/.tunedstack-installed
    local spec="." want
    [ -n "$extras" ] && spec=".[$extras]"
    want="$spec $(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -x .venv/bin/python ]; then
        # Debian and Ubuntu ship venv's pip bootstrap separately.
        python3 -c 'import ensurepip' 2> /dev/null || setup_debs python3-venv
        _say "creating the virtualenv .venv (about 7 s)"
        mkdir -p .venv
        _logged .venv/venv.log python3 -m venv .venv || return
    fi
    if [ ! -f "$stamp" ] || ! grep -qxF "$want" "$stamp"; then
        _say "installing $spec into .venv (once; about $(_pip_seconds "$extras") s;" \
            "log: .venv/pip.log)"
        # Explicit returns: callers run this in `&&` lists, where errexit does not apply.
        _logged .venv/pip.log _pip_install "$spec" || return
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
    # How long depends on the packages and the mirror: the counter and the log show it.
    _say "installing Debian packages: ${missing[*]} (log: /tmp/tunedstack-apt.log)"
    _logged /tmp/tunedstack-apt.log _apt_install "${missing[@]}"
}

_apt_install() {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
