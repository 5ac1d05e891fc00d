"""cairn.S3 (Metaflow's S3 client) against a real S3-compatible server (moto)
on 127.0.0.1: put and get, the _many forms, files, listing, info, missing
keys, and S3(run=self) in a flow read back with S3(run=Run(...))."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from s3_server import s3_server_for_tests

from cairn import CairnException, MetaflowS3NotFound, S3
from cairn.stores.s3_client import MetaflowS3URLException, S3GetObject, S3PutObject

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def server():
    with s3_server_for_tests() as s:
        yield s


@pytest.fixture
def root(server, monkeypatch, tmp_path):
    """A fresh bucket's s3:// root, with the endpoint configured as for the datastore."""
    monkeypatch.setenv("CAIRN_S3_ENDPOINT_URL", server.endpoint)
    for var in ("CAIRN_DATASTORE_SYSROOT_S3", "METAFLOW_DATASTORE_SYSROOT_S3",
                "CAIRN_DATATOOLS_S3ROOT", "METAFLOW_DATATOOLS_S3ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return f"s3://{server.new_bucket()}/some/root"


def test_put_and_get_strings_and_bytes_with_their_info(server, root, tmp_path):
    with S3(s3root=root, tmproot=str(tmp_path)) as s3:
        url = s3.put("greeting", "héllo", content_type="text/plain", metadata={"who": "me"})
        assert url == f"{root}/greeting"
        assert s3.put(f"{root}/raw", b"\x00\x01\x02") == f"{root}/raw"
        obj = s3.get("greeting")
        assert (obj.text, obj.blob, obj.size, obj.key, obj.url) == ("héllo", "héllo".encode(), 6, "greeting", url)
        assert obj.exists and obj.downloaded and obj.content_type == "text/plain"
        assert obj.metadata == {"who": "me"} and isinstance(obj.last_modified, int)
        local = Path(obj.path)
        assert local.read_bytes() == "héllo".encode() and local.parent.parent == tmp_path
        raw = s3.get(f"{root}/raw")  # a full URL works as well as a key
        assert raw.blob == b"\x00\x01\x02" and raw.key == "raw"
        info = s3.info("greeting")
        assert (info.size, info.downloaded, info.metadata, info.path) == (6, False, {"who": "me"}, None)
    assert not local.exists()  # the temporary directory went with the context
    bucket, key = root[5:].split("/", 1)
    body = server.client().get_object(Bucket=bucket, Key=f"{key}/greeting")["Body"].read()
    assert body == "héllo".encode()


def test_many_files_ranges_and_overwrite(root, tmp_path):
    files = []
    for i in range(3):
        files.append(tmp_path / f"f{i}.bin")
        files[-1].write_bytes(bytes([i]) * (1000 + i))
    with S3(s3root=root) as s3:
        pairs = [(f"many/{i}", f"value {i}") for i in range(20)]
        assert s3.put_many(pairs) == [(k, f"{root}/{k}") for k, _ in pairs]
        got = s3.get_many([f"many/{i}" for i in reversed(range(20))])
        assert [o.text for o in got] == [f"value {i}" for i in reversed(range(20))]
        assert len(list(tmp_path.glob("cairn.s3.*"))) == 1  # one directory, in tmproot (the cwd)
        put = s3.put_files([("files/0", str(files[0])),
                            S3PutObject("files/1", path=str(files[1]), metadata={"n": "1"})])
        assert [k for k, _ in put] == ["files/0", "files/1"]
        assert s3.get("files/1").blob == files[1].read_bytes() and s3.info("files/1").metadata == {"n": "1"}
        with pytest.raises(MetaflowS3NotFound, match="does not exist"):
            s3.put_files([("files/x", str(tmp_path / "nope"))])

        part = s3.get(S3GetObject("files/0", offset=10, length=5))
        assert part.blob == b"\x00" * 5 and part.range_info.total_size == 1000
        assert (part.range_info.request_offset, part.range_info.request_length) == (10, 5)

        s3.put("many/0", "changed", overwrite=False)
        assert s3.get("many/0").text == "value 0"
        s3.put("many/0", "changed")
        assert s3.get("many/0").text == "changed"
    assert not list(tmp_path.glob("cairn.s3.*"))


def test_listing_and_recursive_gets(root):
    with S3(s3root=root) as s3:
        s3.put_many([("a/x", "1"), ("a/y", "2"), ("a/sub/z", "3"), ("ab", "4"), ("top", "5")])
        listed = {o.key: o.exists for o in s3.list_paths()}
        assert listed == {"a": False, "ab": True, "top": True}  # a prefix does not exist as an object
        assert {o.key: o.exists for o in s3.list_paths(["a"])} == {"a/x": True, "a/y": True, "a/sub": False}
        assert sorted(o.key for o in s3.list_recursive(["a"])) == ["a/sub/z", "a/x", "a/y"]  # not "ab"
        assert sorted(o.key for o in s3.list_recursive()) == ["a/sub/z", "a/x", "a/y", "ab", "top"]
        assert {o.key: o.text for o in s3.get_recursive(["a/sub", "top"])} == {"a/sub/z": "3", "top": "5"}
        assert len(s3.get_all()) == 5


def test_missing_keys_bad_roots_and_client_params(server, root, monkeypatch):
    with S3(s3root=root) as s3:
        s3.put("here", "x")
        missing = s3.get("gone", return_missing=True)
        assert (missing.exists, missing.downloaded, missing.blob, missing.text) == (False, False, None, None)
        assert [o.exists for o in s3.get_many(["here", "gone"], return_missing=True)] == [True, False]
        assert [o.exists for o in s3.info_many(["gone", "here"], return_missing=True)] == [False, True]
        with pytest.raises(MetaflowS3NotFound, match="gone does not exist"):
            s3.get("gone")
        with pytest.raises(MetaflowS3NotFound):
            s3.info("gone")
    with S3() as s3, pytest.raises(MetaflowS3URLException, match="not an s3:// URL"):
        s3.get("relative/key")
    with pytest.raises(CairnException, match="needs an S3 root"):
        S3(run=type("R", (), {"pathspec": "F/1"})())
    with pytest.raises(MetaflowS3URLException, match="expected an s3://"):
        S3(s3root="/local/path")
    with pytest.raises(CairnException, match="unsupported arguments role"):
        S3(role="arn:aws:iam::1:role/x")
    monkeypatch.delenv("CAIRN_S3_ENDPOINT_URL")  # client_params= gives boto3 the endpoint instead
    with S3(s3root=root, client_params={"endpoint_url": server.endpoint}) as s3:
        assert s3.get("here").text == "x"
    monkeypatch.setenv("CAIRN_S3_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("CAIRN_DATATOOLS_S3ROOT", root)
    with S3(run=type("R", (), {"pathspec": "F/1"})(), prefix="other") as s3:
        assert s3.put("k", "v") == f"s3://{root[5:].split('/')[0]}/other/F/1/k"


def test_import_cairn_does_not_import_boto3():
    code = "import sys, cairn; cairn.S3(s3root='s3://b/p'); print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.e2e
def test_s3_run_self_in_a_flow_is_read_back_with_run(server, runner):
    bucket = server.new_bucket()
    env = server.env(bucket)
    flow = runner.write("s3flow.py", """
        from cairn import FlowSpec, S3, current, step

        class S3Flow(FlowSpec):
            @step
            def start(self):
                with S3(run=self) as s3:
                    self.url = s3.put("model", "weights of " + current.run_id)
                self.next(self.end)

            @step
            def end(self):
                with S3(run=self) as s3:
                    assert s3.get("model").text == "weights of " + current.run_id

        if __name__ == "__main__":
            S3Flow()
    """)
    runner.run(flow, "run", check=True, env=env)
    keys = [k for k in server.objects(bucket) if k.startswith("cairn/data/")]
    assert len(keys) == 1 and keys[0].startswith("cairn/data/S3Flow/") and keys[0].endswith("/model")
    runner.env.update(env)
    proc = runner.python("""
        from cairn import Flow, Run, S3
        run = Flow("S3Flow").latest_run
        with S3(run=Run(run.pathspec)) as s3:
            obj = s3.get("model")
            print(obj.text == "weights of " + run.id, obj.url == run.data.url)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]
    assert not [n for n in os.listdir(runner.dir) if n.startswith("cairn.s3.")]  # downloads removed
