"""The sample WSGI app tunedstack serves when a stack names no app of its own.

Two endpoints exercise the whole path HAProxy -> gunicorn -> PostgreSQL + Redis:
  GET /healthz  200 when PostgreSQL answers `SELECT 1` and Redis answers PING, else 503
  GET /hits     one real write and read on both: a row in PostgreSQL, a counter in Redis;
                only with the `X-Tunedstack-Token` header the benchmark and the rehearsal
                send (TUNEDSTACK_HITS_TOKEN in app.env), so a public box is no open write
                endpoint: anyone else gets 403 and nothing is written
Connections are opened once per worker process and reused, as a pooled app would. Errors are
logged (gunicorn's error log), never sent: the world sees only which dependency failed.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg2
import redis

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
TOKEN_HEADER = "HTTP_X_TUNEDSTACK_TOKEN"

_local = threading.local()


def _pg() -> Any:
    conn = getattr(_local, "pg", None)
    if conn is None or conn.closed:
        conn = psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS hits (id bigserial PRIMARY KEY,"
                " at timestamptz NOT NULL DEFAULT now())"
            )
        _local.pg = conn
    return conn


def _redis() -> redis.Redis:
    client = getattr(_local, "redis", None)
    if client is None:
        client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5)
        _local.redis = client
    return client


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _log(environ: dict[str, Any], what: str, error: Exception) -> None:
    environ["wsgi.errors"].write(f"tunedstack_app: {what}: {type(error).__name__}: {error}\n")


def _health(environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    checks: dict[str, str] = {}
    for name, probe in (("postgresql", _probe_pg), ("redis", _probe_redis)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as e:  # any failure of a dependency is a failed health check
            _local.__dict__.pop("pg" if name == "postgresql" else "redis", None)
            _log(environ, f"health of {name}", e)
            checks[name] = "error"
    healthy = all(v == "ok" for v in checks.values())
    return ("200 OK" if healthy else "503 Service Unavailable"), checks


def _probe_pg() -> None:
    with _pg().cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()


def _probe_redis() -> None:
    _redis().ping()


def _hits() -> dict[str, Any]:
    with _pg().cursor() as cur:
        cur.execute("INSERT INTO hits DEFAULT VALUES RETURNING id")
        row_id = cur.fetchone()[0]
        # Read it back by key: constant cost, where count(*) would slow with every write.
        cur.execute("SELECT at FROM hits WHERE id = %s", (row_id,))
        at = cur.fetchone()[0]
    counter = _redis().incr("tunedstack:hits")
    return {"row": row_id, "at": at.isoformat(), "counter": counter, "pid": os.getpid()}


def _may_write(environ: dict[str, Any]) -> bool:
    token = os.environ.get("TUNEDSTACK_HITS_TOKEN", "")
    given = str(environ.get(TOKEN_HEADER, ""))
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        status, checks = _health(environ)
        return _json(start_response, status, checks)
    if path == "/hits":
        if not _may_write(environ):
            return _json(start_response, "403 Forbidden", {"error": "writes need the token"})
        try:
            return _json(start_response, "200 OK", _hits())
        except Exception as e:
            _local.__dict__.clear()
            _log(environ, "hits", e)
            return _json(start_response, "503 Service Unavailable", {"error": "unavailable"})
    if path == "/":
        return _json(start_response, "200 OK", {"service": "tunedstack sample app"})
    return _json(start_response, "404 Not Found", {"error": "not found"})
