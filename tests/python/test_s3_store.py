"""The S3 blob store against a real S3-compatible server (moto) on 127.0.0.1:
the same bytes as local blobs, write-once, read through a verifying cache."""

from __future__ import annotations

import base64
import os
import zlib
from pathlib import Path

import pytest
from s3_server import s3_server_for_tests

from cairn import _core
from cairn.errors import CairnError, NotFoundError
from cairn.stores import CachedStore, S3Config
from cairn.stores.config import S3ConfigError
from cairn.stores.s3 import S3Blobs

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def server():
    with s3_server_for_tests() as s:
        yield s


def _store(server, bucket: str, root: Path) -> CachedStore:
    config = S3Config.parse(f"s3://{bucket}/some/prefix", server.endpoint)
    return CachedStore(str(root), S3Blobs(config))


def test_s3_objects_equal_local_blob_files_byte_for_byte(server, tmp_path):
    bucket = server.new_bucket()
    store = _store(server, bucket, tmp_path / "a")
    big = os.urandom(3 << 20)
    digests = [store.put([b"small value"])[0], store.put([big, b"second segment"])[0]]
    objects = server.objects(bucket)
    assert sorted(objects) == sorted(f"some/prefix/objects/{d[:2]}/{d[2:]}" for d in digests)
    for d in digests:
        remote = server.client().get_object(Bucket=bucket, Key=store.remote.key_of(d))["Body"].read()
        assert remote == Path(store.path_of(d)).read_bytes()
        # ... and the digest is today's: what a plain local store computes.
        assert d == _core.ArtifactStore(str(tmp_path / "plain")).put(
            [b"small value"] if d == digests[0] else [big, b"second segment"])[0]


def test_a_second_put_uploads_nothing(server, tmp_path):
    bucket = server.new_bucket()
    first = _store(server, bucket, tmp_path / "a")
    first.put([b"x" * 10000])
    before = server.objects(bucket)
    again = _store(server, bucket, tmp_path / "b")  # another node, empty cache
    again.put([b"x" * 10000])
    assert again.remote.uploaded == 0
    assert server.objects(bucket) == before  # same keys, same etags, not rewritten


def test_a_fresh_cache_reads_through_and_verifies(server, tmp_path):
    bucket = server.new_bucket()
    digest = _store(server, bucket, tmp_path / "writer").put([b"payload" * 1000])[0]
    reader = _store(server, bucket, tmp_path / "reader")
    assert not reader.local.has(digest)
    assert bytes(reader.get(digest)[0]) == b"payload" * 1000
    assert reader.local.has(digest)  # cached as an ordinary blob
    assert bytes(_core.ArtifactStore(str(tmp_path / "reader")).get(digest)[0]) == b"payload" * 1000

    # A damaged object is refused, never returned as data.
    server.client().put_object(Bucket=bucket, Key=reader.remote.key_of(digest),
                               Body=Path(reader.path_of(digest)).read_bytes()[:-3] + b"bad")
    third = _store(server, bucket, tmp_path / "third")
    with pytest.raises(CairnError):
        third.get(digest)
    with pytest.raises(NotFoundError):
        third.get("0" * 32)


def test_writes_are_conditional_and_tolerate_servers_without_them(server, tmp_path):
    bucket = server.new_bucket()
    store = _store(server, bucket, tmp_path / "a")
    digest = store.put([b"once" * 2000])[0]
    key = store.remote.key_of(digest)
    with pytest.raises(Exception) as e:  # the server enforces If-None-Match: *
        server.client().put_object(Bucket=bucket, Key=key, Body=b"other", IfNoneMatch="*")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412

    class NoConditionalWrites:
        """A client whose server answers If-None-Match with 501."""

        def __init__(self, real):
            self.real, self.plain_puts = real, 0

        def __getattr__(self, name):
            return getattr(self.real, name)

        def put_object(self, **kw):
            if "IfNoneMatch" in kw:
                err = Exception("NotImplemented")
                err.response = {"ResponseMetadata": {"HTTPStatusCode": 501}}
                raise err
            self.plain_puts += 1
            return self.real.put_object(**kw)

    other = _store(server, bucket, tmp_path / "b")
    fake = NoConditionalWrites(other.remote.client())
    other.remote.client = lambda: fake
    d2 = other.put([b"no conditional writes here" * 300])[0]
    assert fake.plain_puts == 1 and not other.remote._conditional
    assert _store(server, bucket, tmp_path / "c").get(d2)[0] == b"no conditional writes here" * 300


def test_small_puts_need_no_head_and_big_gets_come_in_ranges(server, tmp_path, monkeypatch):
    bucket = server.new_bucket()
    small = _store(server, bucket, tmp_path / "a")
    small.put([b"s" * 50_000])
    assert small.remote.heads == 0 and small.remote.uploaded == 1
    again = _store(server, bucket, tmp_path / "b")
    again.put([b"s" * 50_000])  # If-None-Match answered: already there
    assert again.remote.heads == 0 and again.remote.uploaded == 0

    big = os.urandom(12 << 20)  # above HEAD_MIN: asked first
    digest = again.put([big, b"tail"])[0]
    assert again.remote.heads == 1 and again.remote.uploaded == 1
    # The cache file was written from the pieces the upload sent: a sound blob.
    assert [bytes(s) for s in again.local.get(digest)] == [big, b"tail"]
    third = _store(server, bucket, tmp_path / "e")
    assert third.put([big, b"tail"])[0] == digest  # the bucket has it: nothing sent ...
    assert third.remote.uploaded == 0 and [bytes(s) for s in third.local.get(digest)] == [big, b"tail"]
    monkeypatch.setenv("CAIRN_S3_PART_MB", "5")  # three ranges, two of them in parallel
    reader = _store(server, bucket, tmp_path / "c")
    assert [bytes(s) for s in reader.get(digest)] == [big, b"tail"]
    assert Path(reader.path_of(digest)).read_bytes() == Path(again.path_of(digest)).read_bytes()

    monkeypatch.setenv("CAIRN_S3_PART_MB", "lots")
    with pytest.raises(S3ConfigError, match="CAIRN_S3_PART_MB='lots': expected a whole number of MB"):
        _store(server, bucket, tmp_path / "d").get(digest)


@pytest.mark.parametrize("size", [50_000, 3 << 20])  # from the cache file; teed from the value
def test_puts_send_a_crc32_of_their_bytes_and_no_payload_signature(server, tmp_path, size):
    bucket = server.new_bucket()
    store = _store(server, bucket, tmp_path / "a")
    sent: list[dict[str, str]] = []
    store.remote.client().meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers)))
    digest = store.put([os.urandom(size)])[0]
    assert len(sent) == 1
    blob_file = Path(store.path_of(digest)).read_bytes()
    crc = base64.b64encode(zlib.crc32(blob_file).to_bytes(4, "big")).decode()
    # The server checks every byte against the CRC32; botocore read none of
    # them twice to sign a SHA-256 of the body.
    assert sent[0]["x-amz-checksum-crc32"] in (crc, crc.encode())
    assert sent[0]["X-Amz-Content-SHA256"] in ("UNSIGNED-PAYLOAD", b"UNSIGNED-PAYLOAD")


def test_threads_share_one_client_and_a_forked_child_makes_its_own(server, tmp_path):
    import threading

    blobs = S3Blobs(S3Config.parse("s3://any/prefix", server.endpoint))
    first = blobs.client()
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(blobs.client())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(c is first for c in seen)  # a proxy's request thread makes no client
    pid = os.fork()
    if pid == 0:  # never the parent's connections
        os._exit(0 if blobs.client() is not first else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_a_full_disk_under_a_teed_put_fails_it_and_leaves_no_file(server, tmp_path, monkeypatch):
    import errno

    store = _store(server, server.new_bucket(), tmp_path / "a")
    real = os.pwrite

    def full(fd: int, data: bytes, offset: int) -> int:
        if offset > (1 << 20):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(CairnError, match="could not be written to the cache at .*No space left on device"):
        store.put([os.urandom(3 << 20)])  # above TEE_MIN: teed
    monkeypatch.setattr(os, "pwrite", real)
    assert not [p for p in (tmp_path / "a").rglob("*") if p.is_file()]  # no blob, no temporary file


def test_a_failed_upload_fails_the_put(server, tmp_path):
    store = _store(server, "no-such-bucket", tmp_path / "a")
    with pytest.raises(S3ConfigError, match=r"of blob \w+ at s3://no-such-bucket/some/prefix"):
        store.put([os.urandom(2 << 20)])


def test_config_from_cairn_or_metaflow_names():
    env = {"METAFLOW_DATASTORE_SYSROOT_S3": "s3://bkt/a/b/", "METAFLOW_S3_ENDPOINT_URL": "http://h:1"}
    assert S3Config.from_env(env) == S3Config("bkt", "a/b", "http://h:1")
    env["CAIRN_DATASTORE_SYSROOT_S3"] = "s3://mine"
    assert S3Config.from_env(env) == S3Config("mine", "", "http://h:1")
    assert S3Config.from_env({}) is None
    with pytest.raises(S3ConfigError, match="expected s3://bucket/prefix"):
        S3Config.parse("/local/path")


@pytest.mark.e2e
def test_a_run_with_an_s3_datastore_is_read_back_from_s3(server, runner):
    bucket = server.new_bucket()
    env = server.env(bucket)
    flow = runner.write("big.py", """
        import os, shutil, sys
        from cairn import FlowSpec, step

        class BigFlow(FlowSpec):
            @step
            def start(self):
                self.blob = bytes(range(256)) * 40000
                self.next(self.end)

            @step
            def end(self):
                # As on another machine: the blob only in S3, so reading it downloads it.
                shutil.rmtree(os.environ["BIG_CACHE"])
                assert len(self.blob) == 10240000
                # ... through the run process, which holds the S3 client: the
                # worker and its tasks never load boto3 (stores/proxy.py).
                assert "boto3" not in sys.modules

        if __name__ == "__main__":
            BigFlow()
    """)
    proc = runner.run(flow, "run", check=True, env={**env, "BIG_CACHE": str(runner.root / "objects")})
    assert any(k.startswith("cairn/objects/") for k in server.objects(bucket)), proc.stdout + proc.stderr
    # Another machine: the metadata, but none of the blob files.
    import shutil

    shutil.rmtree(runner.root / "objects")
    runner.env.update(env)
    proc = runner.python("""
        from cairn import Flow
        print(len(Flow("BigFlow").latest_run["start"].task.data.blob))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["10240000"]
