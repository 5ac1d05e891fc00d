"""An S3-compatible server for tests: moto's, on 127.0.0.1 and a free port,
started as a child process and stopped by its pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    endpoint: str
    pid: int

    def env(self, bucket: str, prefix: str = "cairn") -> dict[str, str]:
        return {**CREDENTIALS, "CAIRN_DATASTORE_SYSROOT_S3": f"s3://{bucket}/{prefix}",
                "CAIRN_S3_ENDPOINT_URL": self.endpoint}

    def client(self, config=None):  # botocore's Config -> boto3's S3 client
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1",
        ).client("s3", endpoint_url=self.endpoint, config=config)

    def new_bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, tuple[str, object]]:
        """key -> (etag, last modified) of every object in the bucket."""
        out = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                out[o["Key"]] = (o["ETag"], o["LastModified"])
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def s3_server() -> Iterator[S3Server]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **CREDENTIALS}, start_new_session=True,
    )
    try:
        # Werkzeug announces the address once it listens.
        seen = []
        for line in proc.stderr:  # type: ignore[union-attr]
            seen.append(line)
            if "Running on" in line:
                break
        else:
            raise RuntimeError("moto server did not start:\n" + "".join(seen))
        # Keep draining its log so that it never blocks on a full pipe.
        subprocess_drain(proc)
        yield S3Server(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def s3_server_for_tests() -> Iterator[S3Server]:
    """The server, with its credentials in this process's environment
    (restored afterwards) so that boto3 here and in children finds them."""
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        with s3_server() as server:
            yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def subprocess_drain(proc: subprocess.Popen) -> None:
    import threading

    def drain() -> None:
        for _ in proc.stderr:  # type: ignore[union-attr]
            pass

    threading.Thread(target=drain, daemon=True).start()
