"""Throwaway daemons on loopback, started on rendered configs (with ports and paths moved to a
temp dir), for the tests that prove each file with the program that reads it on the box."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import resource
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from components.model.layout import PATHS
from components.model.sizing import Sizing

POSTGRES_BIN = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rewrite(text: str, pattern: str, replacement: str) -> str:
    """Replace a whole line matching `pattern`; fail if the rendered file no longer has it."""
    new, count = re.subn(rf"(?m)^{pattern}$", replacement, text)
    assert count >= 1, f"rendered file has no line matching {pattern!r}"
    return new


def haproxy_on_loopback(cfg: str, sz: Sizing, http: int, stats: int, app_socket: Path) -> str:
    """The rendered haproxy.cfg moved to loopback ports, in front of `app_socket`."""
    cfg = rewrite(cfg, r"    bind :80 backlog (\d+)", rf"    bind 127.0.0.1:{http} backlog \1")
    cfg = rewrite(cfg, r"    bind :::80 v6only .*", "")
    cfg = rewrite(cfg, r"    bind 127\.0\.0\.1:8404", f"    bind 127.0.0.1:{stats}")
    cfg = rewrite(cfg, r"    stats socket .*", "")
    cfg = cfg.replace(f"server gunicorn {PATHS.app_socket} ", f"server gunicorn {app_socket} ")
    hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard_limit < sz.kernel.file_limits.haproxy:
        # The box's drop-in grants HAProxy its LimitNOFILE; this machine's hard limit may be
        # lower and cannot be raised here, so only maxconn shrinks to what it can host.
        fitting = (hard_limit - 1024) // 2
        cfg = rewrite(cfg, rf"    maxconn {sz.haproxy.maxconn}", f"    maxconn {fitting}")
    return cfg


def wait_for(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as e:
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last})")


@contextlib.contextmanager
def world_readable_tmpdir(owner: str | None = None) -> Iterator[Path]:
    """A temp dir another user (postgres) can use; pytest's own tmp_path is private to root."""
    path = Path(tempfile.mkdtemp(prefix="tunedstack-"))
    path.chmod(0o755)
    if owner:
        shutil.chown(path, owner, owner)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Postgres:
    bin_dir: Path
    socket_dir: Path
    port: int

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            _as_postgres(
                [
                    str(self.bin_dir / "psql"),
                    "-XAt",
                    "-h",
                    str(self.socket_dir),
                    "-p",
                    str(self.port),
                    "-d",
                    database,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    sql,
                ]
            ),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return result.stdout.strip()


def postgres_bin(version: int) -> Path:
    """The binaries of `version`, or of the newest PostgreSQL installed here."""
    bin_dir = POSTGRES_BIN / str(version) / "bin"
    if not bin_dir.is_dir():
        installed = sorted(p.name for p in POSTGRES_BIN.iterdir()) if POSTGRES_BIN.is_dir() else []
        bin_dir = POSTGRES_BIN / installed[-1] / "bin"
    return bin_dir


@contextlib.contextmanager
def stopped_cluster(version: int) -> Iterator[Path]:
    """A fresh data directory nothing runs on, for `postgres -C` of runtime-computed values
    (shared_memory_size_in_huge_pages), which PostgreSQL answers only for a stopped server."""
    owner = "postgres" if os.geteuid() == 0 else None
    with world_readable_tmpdir(owner) as tmp:
        data = tmp / "data"
        subprocess.run(
            _as_postgres([str(postgres_bin(version) / "initdb"), "-D", str(data), "--no-sync"]),
            capture_output=True,
            check=True,
            timeout=120,
        )
        yield data


def computed_setting(version: int, data: Path, name: str, settings: dict[str, str]) -> str:
    args = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
    result = subprocess.run(
        _as_postgres([str(postgres_bin(version) / "postgres"), "-D", str(data), "-C", name, *args]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


@contextlib.contextmanager
def postgres(version: int, conf_d: str, pg_hba: str) -> Iterator[Postgres]:
    """initdb a cluster, include the rendered conf.d file and pg_hba, start it, stop it."""
    bin_dir = postgres_bin(version)
    owner = "postgres" if os.geteuid() == 0 else None
    with world_readable_tmpdir(owner) as tmp:
        data = tmp / "data"
        subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "peer",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            capture_output=True,
            check=True,
            timeout=120,
        )
        (data / "conf.d").mkdir()
        (data / "conf.d" / "60-tunedstack.conf").write_text(conf_d)
        (data / "pg_hba.conf").write_text(pg_hba)
        with (data / "postgresql.conf").open("a") as f:
            f.write("\ninclude_dir = 'conf.d'\n")
        if owner:
            subprocess.run(["chown", "-R", "postgres:postgres", str(tmp)], check=True)
        port = free_port()
        subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(tmp / "log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {port} -k {tmp}",
                    "start",
                ]
            ),
            capture_output=True,
            check=True,
            timeout=90,
        )
        try:
            yield Postgres(bin_dir, tmp, port)
        finally:
            subprocess.run(
                _as_postgres(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
                check=False,
                timeout=60,
            )


@dataclass
class Redis:
    port: int
    password: str

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [
                "redis-cli",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--no-auth-warning",
                "-a",
                self.password,
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return result.stdout.strip()


@contextlib.contextmanager
def redis(conf: str, password: str) -> Iterator[Redis]:
    with world_readable_tmpdir() as tmp:
        port = free_port()
        conf = rewrite(conf, r"port \d+", f"port {port}")
        conf = rewrite(conf, r"dir .*", f"dir {tmp}")
        conf = rewrite(conf, r"pidfile .*", f"pidfile {tmp}/redis.pid")
        conf = rewrite(conf, r"logfile .*", f"logfile {tmp}/redis.log")
        conf = rewrite(conf, r"supervised .*", "supervised no")
        (tmp / "redis.conf").write_text(conf)
        proc = subprocess.Popen(
            ["redis-server", str(tmp / "redis.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = Redis(port, password)
        try:
            wait_for(lambda: server.cli("PING") == "PONG", "redis-server")
            yield server
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@contextlib.contextmanager
def process(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class HeldApp(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Stands in for gunicorn on a Unix socket: answers at once, except the paths `holds`
    picks, which wait until `release` is set (counted in `held`)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client gone at the test's end is no failure of HAProxy's

    def __init__(self, path: Path, holds: Callable[[str], bool]) -> None:
        self.holds = holds
        self.release = threading.Event()
        self.held = 0
        self.lock = threading.Lock()
        super().__init__(str(path), _HeldHandler)


class _HeldHandler(http.server.BaseHTTPRequestHandler):
    server: HeldApp
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.server.holds(self.path):
            with self.server.lock:
                self.server.held += 1
            self.server.release.wait(timeout=60)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "app-socket"

    def log_message(self, format: str, *args: object) -> None:
        pass
