"""An S3-compatible stand-in for Linode Object Storage, for the backup tests and the
rehearsal's restore drill: moto's S3 server (plain HTTP on loopback) behind HAProxy, which
speaks TLS with a certificate for the endpoint's name from a CA made for the run.

HAProxy in front, not moto's own TLS: pgBackRest 2.45 fails on the TLS close of moto's
development server ("unexpected eof while reading"), and it always speaks HTTPS to S3. The
boxes trust the CA like any other (their system store), and find the endpoint's name in DNS or
/etc/hosts; so the backups' files name the stand-in exactly as they name the real endpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from components.tools.rehearsal.host import free_port

# The stand-in's TLS key and certificates live one run.
CERT_DAYS = 2
START_SECONDS = 30
# The access key pair moto accepts (it checks the signature's shape, not the key).
ACCESS_KEY = "TUNEDSTACKSTANDIN000"


class StandInError(RuntimeError):
    pass


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StandInError(f"openssl {args[0]} failed: {result.stderr.strip()[-300:]}")


def make_certificates(folder: Path, host: str) -> tuple[Path, Path]:
    """A CA, and a server certificate for `host` signed by it: (CA pem, HAProxy's pem)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.pem", "s3.key", "s3.csr", "s3.pem")
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        str(CERT_DAYS),
        "-subj",
        "/CN=tunedstack stand-in CA",
    )
    _openssl("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}")
    ext = folder / "s3.ext"
    ext.write_text(
        f"subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        str(CERT_DAYS),
        "-extfile",
        str(ext),
    )
    bundle = folder / "haproxy.pem"
    bundle.write_text(cert.read_text() + key.read_text())
    bundle.chmod(0o600)
    return ca, bundle


def _haproxy_cfg(bind: str, port: int, bundle: Path, moto_port: int) -> str:
    return f"""global
    log stderr format short local0 notice
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend s3
    bind {bind}:{port} ssl crt {bundle}
    default_backend moto
backend moto
    server moto 127.0.0.1:{moto_port}
"""


@dataclass
class S3StandIn:
    """`with S3StandIn(folder, host, bucket) as s3:` serves `bucket` at https://host:port."""

    folder: Path
    host: str
    bucket: str
    bind: str = "127.0.0.1"
    port: int = 0
    moto_port: int = 0

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.moto_port = self.moto_port or free_port()
        self._processes: list[subprocess.Popen[bytes]] = []
        self.ca = self.folder / "ca.pem"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> S3StandIn:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.ca, bundle = make_certificates(self.folder, self.host)
        moto = Path(sys.executable).with_name("moto_server")
        if not moto.exists():
            raise StandInError("moto_server is missing: install tunedstack[rehearsal]")
        env = {
            **os.environ,
            # Requests to the endpoint's name are path-style, not a bucket in the host name.
            "MOTO_S3_CUSTOM_ENDPOINTS": f"https://{self.endpoint}",
        }
        for name, command in (
            ("moto", [str(moto), "-H", "127.0.0.1", "-p", str(self.moto_port)]),
            ("haproxy", ["haproxy", "-db", "-f", str(self._write_cfg(bundle))]),
        ):
            log = (self.folder / f"{name}.log").open("wb")
            self._processes.append(
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            )
        self._client().create_bucket(Bucket=self.bucket)

    def _write_cfg(self, bundle: Path) -> Path:
        cfg = self.folder / "haproxy.cfg"
        cfg.write_text(_haproxy_cfg(self.bind, self.port, bundle, self.moto_port))
        return cfg

    def _client(self) -> Any:
        import boto3  # moto's dependency: only where the stand-in runs

        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.moto_port}",
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key="standin",
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                client.list_buckets()
                return client
            except Exception as e:
                if time.monotonic() > deadline:
                    raise StandInError(f"moto did not answer in {START_SECONDS} s: {e}") from e
                time.sleep(0.2)

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, by key: what an attacker with the bucket would read."""
        client = self._client()
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                found[item["Key"]] = body.read()
        return found

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()
