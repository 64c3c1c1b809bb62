#!/usr/bin/env bash
# The benchmark's box on the host's own cores: PID 1 of private mount, network and PID
# namespaces (`unshare`, started by hostbox.py inside the box's cgroup). It runs the real Debian
# daemons on the rendered files, at the paths the files name, without touching the host:
# /etc and /opt are overlays whose changes land in the rig's folder, the daemons' data, logs and
# /run are empty folders of the rig, /dev is a private copy with its own /dev/log. When this
# process dies the kernel kills every process of the box and the mounts go with the namespace.
#
# Usage: hostbox.sh RIG_FOLDER PG_VERSION LINK_NIC LINK_ADDRESS APP_USER DB_USER DB_NAME
# (RIG_FOLDER outside /run and the folders below: they are replaced inside the box.)
set -euo pipefail

rig=$1 pg_version=$2 nic=$3 address=$4 app_user=$5 db_user=$6 db_name=$7
files=$rig/files    # the rendered files, as a tree from /
state=$rig/state    # the box's own folders
out=$rig/out        # what the rig reads back: sysctls, readiness, logs
mkdir -p "$state" "$out"

mount --make-rprivate /

# /etc and /opt: overlays, so the daemons see the distribution's files plus the rendered ones.
for dir in /etc /opt; do
    name=${dir#/}
    mkdir -p "$state/$name.upper" "$state/$name.work"
    mount -t overlay overlay \
        -o "lowerdir=$dir,upperdir=$state/$name.upper,workdir=$state/$name.work" "$dir"
done
# Data, logs and runtime folders start empty, as on a fresh box (the host's own PostgreSQL or
# Redis data, if any, stays out of sight).
empty_folder() { # FOLDER OWNER
    local empty=$state/empty${1//\//_}
    mkdir -p "$empty"
    chown "$2:$2" "$empty"
    mount --bind "$empty" "$1"
}
empty_folder /run root
empty_folder /etc/postgresql postgres
empty_folder /var/lib/postgresql postgres
empty_folder /var/log/postgresql postgres
empty_folder /var/lib/redis redis
empty_folder /var/log/redis redis
empty_folder /var/lib/haproxy haproxy

# A private /dev: the host's device nodes the daemons use, and a /dev/log of the box's own
# (HAProxy logs there; journald would on the real box).
mkdir -p "$state/hostdev"
mount --bind /dev "$state/hostdev"
mount -t tmpfs -o mode=0755 tmpfs /dev
for node in null zero full random urandom tty; do
    touch "/dev/$node"
    mount --bind "$state/hostdev/$node" "/dev/$node"
done
mkdir /dev/shm /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
umount -l "$state/hostdev"
python3 - "$out/syslog" <<'PY' &
# The box's syslog: every datagram on /dev/log appended to a file, as journald stores it.
import os, socket, sys
sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sink.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as log:
    while True:
        log.write(sink.recv(65536) + b"\n")
PY
for _ in $(seq 1 100); do [ -S /dev/log ] && break; sleep 0.1; done

# The link to the load generator: the rig moves its end into this namespace.
ip link set lo up
for _ in $(seq 1 300); do ip link show "$nic" >/dev/null 2>&1 && break; sleep 0.1; done
ip addr add "$address" dev "$nic"
ip link set "$nic" up

# Sysctls: only the keys this network namespace has of its own. Every other key (vm.*, fs.*,
# and any net.* key the kernel keeps global) would change the host and is left out.
: > "$out/sysctls"
trim() {
    local text=$1
    text=${text#"${text%%[![:space:]]*}"}
    echo "${text%"${text##*[![:space:]]}"}"
}
if [ -f "$files/etc/sysctl.d/60-tunedstack.conf" ]; then
    while IFS='=' read -r key value; do
        key=$(trim "$key") value=$(trim "$value")
        case $key in '' | '#'* | ';'*) continue ;; esac
        path=/proc/sys/${key//.//}
        if [[ $key == net.* ]] && [ -w "$path" ] && echo "$value" > "$path" 2>/dev/null; then
            echo "in_force $key $value" >> "$out/sysctls"
        else
            echo "not_applied $key $value" >> "$out/sysctls"
        fi
    done < "$files/etc/sysctl.d/60-tunedstack.conf"
fi

# A unit's LimitNOFILE as systemd would set it (the rendered drop-in or unit, else systemd's
# defaults: soft 1024, hard 524288), within the rig's own hard limit: raising that takes
# CAP_SYS_RESOURCE, which a container may not have. What each daemon got is on record.
hard_cap=$(ulimit -Hn)
: > "$out/limits"
nofile() { # NAME UNIT_FILE
    local limit soft hard
    limit=$(sed -n 's/^LimitNOFILE=//p' "$2" 2>/dev/null | tail -1)
    limit=${limit:-1024:524288}
    soft=${limit%%:*} hard=${limit##*:}
    [ "$hard_cap" = unlimited ] || {
        [ "$soft" -le "$hard_cap" ] || soft=$hard_cap
        [ "$hard" -le "$hard_cap" ] || hard=$hard_cap
    }
    echo "$1 $limit $soft:$hard" >> "$out/limits"
    echo "$soft:$hard"
}
with_nofile() {
    local limit=$1
    shift
    prlimit --nofile="$limit" -- "$@"
}

# PostgreSQL: Debian's fresh cluster, then the rendered files over it.
pg_etc=/etc/postgresql/$pg_version/main
pg_createcluster "$pg_version" main >"$out/pg_createcluster.log" 2>&1
if [ -d "$files$pg_etc" ]; then
    cp -r "$files$pg_etc/." "$pg_etc/"
    chown -R postgres:postgres "$pg_etc"
fi
mkdir -p /run/postgresql
chown postgres:postgres /run/postgresql
with_nofile "$(nofile postgresql "$files/etc/systemd/system/postgresql@.service.d/60-tunedstack.conf")" \
    pg_ctlcluster "$pg_version" main start

# The rendered files under /etc and /opt, with their modes and owners (hostbox.py wrote them).
cp -a "$files/etc/." /etc/
cp -a "$files/opt/." /opt/
[ -x /opt/tunedstack/venv/bin/python ] || {
    mkdir -p /opt/tunedstack/venv/bin
    ln -s /usr/bin/python3 /opt/tunedstack/venv/bin/python
}

db_password=$(sed -n 's/^TUNEDSTACK_DB_PASSWORD="\(.*\)"$/\1/p' /etc/tunedstack/app.env)
TUNEDSTACK_DB_PASSWORD=$db_password runuser -u postgres -- \
    psql -X -q -v ON_ERROR_STOP=1 -v user="$db_user" -v db="$db_name" <<'SQL'
\getenv pw TUNEDSTACK_DB_PASSWORD
CREATE ROLE :"user" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"user";
SQL

mkdir -p /run/redis
chown redis:redis /run/redis
with_nofile "$(nofile redis "$files/etc/systemd/system/redis-server.service.d/60-tunedstack.conf")" \
    runuser -u redis -- redis-server /etc/redis/redis.conf --daemonize no --supervised no &

mkdir -p /run/tunedstack
chown "$app_user" /run/tunedstack
app_unit=/etc/systemd/system/tunedstack-app.service
(
    set -a
    # shellcheck disable=SC1091
    . /etc/tunedstack/app.env
    set +a
    exec prlimit --nofile="$(nofile app "$app_unit")" -- \
        setpriv --reuid="$app_user" --regid="$(id -g "$app_user")" --clear-groups \
        /opt/tunedstack/venv/bin/python -m gunicorn --config /etc/tunedstack/gunicorn.conf.py
) >"$out/gunicorn.log" 2>&1 &

mkdir -p /run/haproxy
with_nofile "$(nofile haproxy "$files/etc/systemd/system/haproxy.service.d/60-tunedstack.conf")" \
    haproxy -W -db -f /etc/haproxy/haproxy.cfg >"$out/haproxy.log" 2>&1 &

echo started > "$out/started"
# PID 1 of the box: reaps its children until the rig kills it.
while true; do wait || sleep 1; done
