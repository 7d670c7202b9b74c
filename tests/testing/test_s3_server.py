"""The SeaweedFS test server: loopback only, signature checks on, stopped by PID."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from liwi.testing.s3_server import S3ServerError, SeaweedS3

pytestmark = pytest.mark.integration

TCP_LISTEN = "0A"  # state code of a listening socket in /proc/net/tcp


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of every TCP/TCP6 socket ``pid`` listens on, read from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != TCP_LISTEN or inode not in inodes:
                continue
            hex_ip, hex_port = local.split(":")
            raw = bytes.fromhex(hex_ip)
            # /proc stores the address as native-endian 32-bit words
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            out.append((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return out


def test_every_port_is_on_loopback(s3_server: SeaweedS3) -> None:
    assert s3_server.proc is not None
    addrs = listening_addresses(s3_server.proc.pid)
    assert len(addrs) >= 5  # master, volume, filer, s3, admin (+ their gRPC ports)
    assert {ip for ip, _ in addrs} == {"127.0.0.1"}, addrs
    assert ("127.0.0.1", s3_server.ports["s3"]) in addrs


def test_signatures_are_checked(s3_server: SeaweedS3) -> None:
    s3_server.client().create_bucket(Bucket="sig-check")
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        s3_server.client(secret_key="not-the-secret").list_objects_v2(Bucket="sig-check")


def test_env_names_the_standard_variables(s3_server: SeaweedS3) -> None:
    env = s3_server.env()
    assert env["AWS_ENDPOINT_URL"] == s3_server.endpoint_url
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == s3_server.access_key
    assert env["AWS_SECRET_ACCESS_KEY"] == s3_server.secret_key


def test_stop_ends_the_process_and_removes_its_data() -> None:
    server = SeaweedS3().start()
    assert server.proc is not None
    proc, data = server.proc, server.dir
    assert data is not None and data.is_dir()
    server.stop()
    assert proc.poll() is not None
    assert not data.exists()
    server.stop()  # idempotent


def test_missing_binary_fails_loudly() -> None:
    with pytest.raises(S3ServerError, match="cannot run"):
        SeaweedS3(weed="/nonexistent/weed").start()
