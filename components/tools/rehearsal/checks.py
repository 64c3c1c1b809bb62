"""Box checks: what the running guest measures against what sizing computed.

One SSH call runs `probe_script` on the guest, which prints `name<TAB>value` lines; each
expectation below compares one of them. HTTP and SSH are checked from the host side.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from components.model.layout import METADATA_SERVICE, PATHS, PORTS, volume_device
from components.model.render import Rendered
from components.model.sizing import Sizing
from components.model.sizing.postgres import GB, MB
from components.model.sizing.sysctl_rules import KERNEL_SYSCTLS, interface_free, kernel_keys

Compare = Callable[[str, str], bool]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    measured: str
    expected: str


@dataclass(frozen=True)
class Expectation:
    name: str
    expected: str
    compare: Compare


def _equal(measured: str, expected: str) -> bool:
    return " ".join(measured.split()) == " ".join(expected.split())


def _kb(value: str) -> int | None:
    match = re.fullmatch(r"(\d+)(kB|MB|GB)", value)
    if not match:
        return None
    return int(match.group(1)) * {"kB": 1, "MB": MB, "GB": GB}[match.group(2)]


def _within_a_block(measured: str, expected: str) -> bool:
    """PostgreSQL keeps these in 8 kB blocks, so SHOW may round the sized value."""
    a, b = _kb(measured), _kb(expected)
    return a is not None and b is not None and abs(a - b) < 8


def _on_device(measured: str, expected: str) -> bool:
    return measured.startswith(expected + "[") or measured == expected


def _loopback_only(measured: str, expected: str) -> bool:
    addresses = measured.split()
    return bool(addresses) and all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::1]") for a in addresses)


def _hard_limit(measured: str, expected: str) -> bool:
    parts = measured.split()
    return len(parts) == 2 and parts[1] == expected


def _contains(measured: str, expected: str) -> bool:
    return expected in measured


def _at_least(measured: str, expected: str) -> bool:
    return measured.isdigit() and int(measured) >= int(expected)


def _estimate_from_above(measured: str, expected: str) -> bool:
    """An estimate from the plan's RAM: at least what the kernel has, and within 15 % of it."""
    return measured.isdigit() and int(expected) * 85 // 100 <= int(measured) <= int(expected)


def expectations(sz: Sizing) -> list[Expectation]:
    limits = sz.kernel.file_limits
    found: list[Expectation] = [
        Expectation(f"sysctl {s.key}", s.value, _equal) for s in sz.kernel.sysctls
    ]
    found += [
        # Nothing on the box needs conntrack, so nothing loads it.
        Expectation("nf_conntrack loaded at boot", "no", _equal),
        # The TCP buffer ceilings are a share of the kernel's tcp_mem, which sizing estimates.
        Expectation(
            "kernel tcp_mem max (bytes)", str(sz.kernel.tcp_mem_max_bytes), _estimate_from_above
        ),
        Expectation("nofile haproxy (soft hard)", str(limits.haproxy), _hard_limit),
        Expectation("nofile gunicorn (soft hard)", str(limits.gunicorn), _hard_limit),
        Expectation("nofile postgres (soft hard)", str(limits.postgres), _hard_limit),
        Expectation("nofile redis (soft hard)", str(limits.redis), _hard_limit),
        Expectation("nofile login shell", str(limits.login), _equal),
        Expectation("nofile login shell hard", str(limits.login_hard), _equal),
    ]
    for key, value in sz.postgres.conf().items():
        compare = _within_a_block if _kb(value) is not None else _equal
        found.append(Expectation(f"postgresql {key}", value, compare))
    found += [
        Expectation("postgresql listen", "127.0.0.1 / ::1 only", _loopback_only),
        Expectation("postgresql data on volume", "volume", _on_device),
        Expectation("redis maxmemory", str(sz.redis.maxmemory_bytes), _equal),
        Expectation("redis maxmemory-policy", sz.redis.maxmemory_policy, _equal),
        Expectation("redis appendonly", "yes", _equal),
        Expectation("redis listen", "127.0.0.1 / ::1 only", _loopback_only),
        Expectation("redis data on volume", "volume", _on_device),
        # The volume budget's usable space is what ext4 really leaves the services.
        Expectation("data volume MB the services may use", str(sz.volume.usable_mb), _at_least),
        Expectation("sshd passwordauthentication", "no", _equal),
        Expectation("transparent hugepages", f"[{sz.kernel.transparent_hugepage}]", _contains),
        Expectation("services active", "active active active active", _equal),
        # A datagram sent from inside each unit's cgroup: EPERM (1) is systemd's IPAddressDeny.
        Expectation(f"{METADATA_SERVICE} from the services (errno)", "1 1 1 1", _equal),
        Expectation("first boot ready marker", "yes", _equal),
    ]
    return found


def probe_script(sz: Sizing, stack: str) -> str:
    """Bash for the guest: one `name<TAB>value` line per expectation, plus boot id and device."""
    pg_data = f"/var/lib/postgresql/{sz.postgres.version}/main"
    lines = [
        "cd /",  # runuser keeps the working directory; postgres may not enter /root
        'emit() { printf \'%s\\t%s\\n\' "$1" "$2"; }',
        "limit() { awk '/Max open files/ {print $4, $5}' \"/proc/$1/limits\"; }",
        'pid_of() { systemctl show -p MainPID --value "$1"; }',
        "rcli() { redis-cli --no-auth-warning -a \"$(awk '/^requirepass/ {print $2}' "
        '/etc/redis/redis.conf)" "$@" | tail -n 1; }',
        "listening() { ss -Hltn \"sport = :$1\" | awk '{print $4}' | sort -u | tr '\\n' ' '; }",
        f"volume=$(readlink -f {volume_device(stack)})",
    ]
    for s in sz.kernel.sysctls:
        lines.append(f"emit 'sysctl {s.key}' \"$(sysctl -n {s.key} 2>&1)\"")
    lines += [
        "emit 'nf_conntrack loaded at boot' \"$(lsmod | awk '$1 == \"nf_conntrack\" "
        '{found = 1} END {print found ? "yes" : "no"}\')"',
        "emit 'kernel tcp_mem max (bytes)' \"$(sysctl -n net.ipv4.tcp_mem | "
        "awk '{print $3 * 4096}')\"",
        'emit \'nofile haproxy (soft hard)\' "$(limit "$(pid_of haproxy)")"',
        'emit \'nofile gunicorn (soft hard)\' "$(limit "$(pid_of tunedstack-app)")"',
        f'emit \'nofile postgres (soft hard)\' "$(limit "$(head -n 1 {pg_data}/postmaster.pid)")"',
        'emit \'nofile redis (soft hard)\' "$(limit "$(pid_of redis-server)")"',
        "emit 'nofile login shell' \"$(ulimit -n)\"",
        "emit 'nofile login shell hard' \"$(ulimit -Hn)\"",
    ]
    for key in sz.postgres.conf():
        lines.append(
            f"emit 'postgresql {key}' \"$(runuser -u postgres -- psql -XAtc 'SHOW {key}')\""
        )
    lines += [
        f"emit 'postgresql listen' \"$(listening {PORTS.postgres})\"",
        f"emit 'postgresql data on volume' \"$(findmnt -n -o SOURCE -T {pg_data} | "
        'sed "s|^$volume|volume|")"',
        "emit 'redis maxmemory' \"$(rcli CONFIG GET maxmemory)\"",
        "emit 'redis maxmemory-policy' \"$(rcli CONFIG GET maxmemory-policy)\"",
        "emit 'redis appendonly' \"$(rcli CONFIG GET appendonly)\"",
        f"emit 'redis listen' \"$(listening {PORTS.redis})\"",
        "emit 'redis data on volume' \"$(findmnt -n -o SOURCE -T /var/lib/redis | "
        'sed "s|^$volume|volume|")"',
        "emit 'data volume MB the services may use' "
        f'"$(df -BM --output=used,avail {PATHS.data_mount} | '
        "awk 'NR == 2 {print $1 + $2}')\"",
        "emit 'sshd passwordauthentication' \"$(sshd -T | awk '$1 == \"passwordauthentication\" "
        "{print $2}')\"",
        "emit 'transparent hugepages' \"$(cat /sys/kernel/mm/transparent_hugepage/enabled)\"",
        f"emit 'services active' \"$(systemctl is-active postgresql@{sz.postgres.version}-main "
        "redis-server haproxy tunedstack-app | tr '\\n' ' ')\"",
        f"emit 'first boot ready marker' \"$(test -f {PATHS.ready_marker} && echo yes)\"",
        # A shell moved into the unit's cgroup sends a datagram as the service would: EPERM
        # when the unit's IP filter drops it, 0 when it leaves.
        "cat > /run/tunedstack-send.py << 'PY'",
        "import socket, sys",
        "try:",
        "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'?', (sys.argv[1], 80))",
        "    print(0)",
        "except OSError as e:",
        "    print(e.errno)",
        "PY",
        "metadata() { sh -c 'echo $$ > \"/sys/fs/cgroup$(systemctl show -p ControlGroup "
        '--value "$1")/cgroup.procs" && exec python3 /run/tunedstack-send.py '
        f'{METADATA_SERVICE}\' _ "$1"; }}',
        f"emit '{METADATA_SERVICE} from the services (errno)' \"$(for unit in haproxy "
        f"tunedstack-app postgresql@{sz.postgres.version}-main redis-server; do "
        "metadata $unit.service; done | tr '\\n' ' ')\"",
        'emit boot_id "$(cat /proc/sys/kernel/random/boot_id)"',
    ]
    return "\n".join(lines) + "\n"


def parse_probe(output: str) -> dict[str, str]:
    measured = {}
    for line in output.splitlines():
        name, _, value = line.partition("\t")
        if name:
            measured[name] = value.strip()
    return measured


def compare(found: list[Expectation], measured: dict[str, str]) -> list[Check]:
    return [
        Check(
            e.name,
            e.compare(measured.get(e.name, ""), e.expected),
            measured.get(e.name, "(not measured)"),
            e.expected,
        )
        for e in found
    ]


def http_json(
    url: str, attempts: int = 20, delay: float = 3.0, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    """GET with retries: the guest accepts connections late."""
    last: Exception | None = None
    request = urllib.request.Request(url, headers=headers or {})
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")
        except (OSError, ValueError) as e:
            last = e
            time.sleep(delay)
    raise ConnectionError(f"{url}: {last}")


def password_login_refused(ssh_base: list[str]) -> Check:
    """Ask sshd for password auth with no key offered: it must only offer publickey."""
    command = [
        *ssh_base[:1],
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        *ssh_base[3:],
        "true",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    methods = re.search(r"Permission denied \(([^)]*)\)", result.stderr)
    measured = methods.group(1) if methods else result.stderr.strip()[:80]
    return Check(
        "ssh refuses passwords",
        result.returncode != 0 and measured == "publickey",
        measured,
        "publickey",
    )


def files_script(rendered: Rendered) -> str:
    """sha256 of every managed file as the box has it (a missing one prints nothing)."""
    paths = " ".join(shlex.quote(f.path) for f in sorted(rendered.files, key=lambda f: f.path))
    return f"sha256sum {paths} 2> /dev/null || true"


def files_check(rendered: Rendered, sha256sum_output: str) -> Check:
    """The box holds exactly this render: every managed file, byte for byte."""
    pairs = (line.split(maxsplit=1) for line in sha256sum_output.splitlines() if " " in line)
    on_box = {path: sha for sha, path in pairs}
    wanted = {f.path: hashlib.sha256(f.content.encode()).hexdigest() for f in rendered.files}
    differ = sorted(path for path, sha in wanted.items() if on_box.get(path) != sha)
    total = len(wanted)
    measured = f"{total - len(differ)}/{total} match"
    if differ:
        measured += f"; not this render: {', '.join(differ[:3])}" + ("…" if len(differ) > 3 else "")
    expected = f"{total}/{total} match"
    return Check("every managed file is the current render", not differ, measured, expected)


def sysctl_keys_check(sysctl_names: str) -> Check:
    """The box's kernel has exactly the sysctl keys overrides are checked against at preview
    (`sysctl -aN`): a kernel update that adds or drops one shows here first."""
    on_box = {interface_free(k) for k in sysctl_names.split()}
    listed = kernel_keys()
    missing, extra = sorted(listed - on_box), sorted(on_box - listed)
    measured = f"{len(on_box)} keys"
    if missing or extra:
        measured += f"; not on the box: {missing[:2]}; not listed: {extra[:2]}"
    return Check(
        "sysctl keys are the ones overrides are checked against",
        not missing and not extra,
        measured,
        f"{len(listed)} keys ({KERNEL_SYSCTLS.name})",
    )


def host_key_check(public_key_file: str, expected: str) -> Check:
    """The host key the first-boot document installed (the SSH session is pinned to it too)."""
    measured = " ".join(public_key_file.split()[:2])
    wanted = " ".join(expected.split()[:2])
    return Check("ssh host key is the pinned one", measured == wanted, measured[:40], wanted[:40])
