"""Reading artifacts back without copying them (issue 13): a numpy array or
a DataFrame's column buffers are views of the blob's copy-on-write mapping,
a bytes value is read straight into the new object; every read still
verifies the digest, so a flipped byte is an error, never wrong data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from cairn import Flow, _core, client, namespace
from conftest import FlowRunner

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

pytestmark = pytest.mark.e2e

N = 1 << 20  # float64s: 8 MiB, stored raw (random doubles do not compress)

FLOW = """
import numpy as np
import pandas as pd
from cairn import FlowSpec, step

class ArraysFlow(FlowSpec):
    @step
    def start(self):
        rng = np.random.default_rng(13)
        self.x = rng.random(%(n)d)
        self.frame = pd.DataFrame({"a": rng.random(%(n)d), "b": np.arange(%(n)d, dtype=np.int64)})
        self.raw = rng.bytes(%(n)d)
        self.buf = bytearray(rng.bytes(4096))
        self.zeros = bytes(%(n)d)  # compressible: stored zstd
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    ArraysFlow()
""".replace("%(n)d", str(N))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> FlowRunner:
    r = FlowRunner(tmp_path_factory.mktemp("arrays"))
    r.run(r.write("arrays.py", FLOW), "run", check=True)
    return r


def _use(root: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CAIRN_HOME", str(root))
    client._stores.clear()
    namespace(None)
    return Flow("ArraysFlow").latest_run["start"].task


@pytest.fixture
def start(made: FlowRunner, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The start task, read from the module's datastore (tests only read it)."""
    yield _use(made.root, monkeypatch)
    client._stores.clear()
    client.default_namespace()


@pytest.fixture
def own(made: FlowRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The start task, read from this test's own copy of the datastore."""
    shutil.copytree(made.root, tmp_path / ".cairn")
    yield _use(tmp_path / ".cairn", monkeypatch)
    client._stores.clear()
    client.default_namespace()


def _path(task: Any, name: str) -> Path:
    return Path(client._artifact_store(task._root).path_of(task[name].sha))


def _expected():
    rng = np.random.default_rng(13)
    x = rng.random(N)
    frame = pd.DataFrame({"a": rng.random(N), "b": np.arange(N, dtype=np.int64)})
    return x, frame, rng.bytes(N), bytearray(rng.bytes(4096))


def _mapping(array):
    """The object at the end of an array's base chain, and whether a
    memoryview sat on the way (numpy → memoryview → its exporter)."""
    obj = array
    while isinstance(obj, np.ndarray) and obj.base is not None:
        obj = obj.base
    return obj.obj if isinstance(obj, memoryview) else obj


def _flip_byte(path: Path, offset_from_end: int) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(-offset_from_end, os.SEEK_END)
        byte = f.read(1)
        f.seek(-offset_from_end, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0x01]))


def test_a_numpy_artifact_is_a_view_of_the_blob_mapping_not_a_copy(start):
    x = start.data.x
    expected, *_ = _expected()
    assert np.array_equal(x, expected)
    mapping = _mapping(x)
    assert type(mapping) is _core.BlobSegment
    # The array's memory is the mapping's memory: no copy was made.
    assert np.shares_memory(x, np.frombuffer(mapping, dtype=np.uint8))


def test_writing_to_a_loaded_array_copies_only_that_page_never_the_blob(start):
    x = start.data.x
    path = _path(start, "x")
    before = path.read_bytes()
    first = float(x[0])
    x[0] = -1.0  # copy-on-write: this process's page only
    assert x[0] == -1.0
    assert path.read_bytes() == before
    again = Flow("ArraysFlow").latest_run["start"].task.data.x
    assert again[0] == first


def test_a_flipped_byte_in_an_array_blob_is_an_error_not_wrong_data(own):
    _flip_byte(_path(own, "x"), 12345)  # inside the array's segment, the blob's last
    fresh = Flow("ArraysFlow").latest_run["start"].task
    with pytest.raises(_core.DatastoreError, match=r"artifact ArraysFlow/1/start/1/x: .*does not match its digest"):
        _ = fresh.data.x


def test_a_dataframe_artifact_keeps_its_column_buffers_in_the_mapping(start):
    frame = start.data.frame
    _, expected, *_ = _expected()
    pd.testing.assert_frame_equal(frame, expected)
    for column in ("a", "b"):
        values = frame[column].to_numpy()
        mapping = _mapping(values)
        assert type(mapping) is _core.BlobSegment, column
        assert np.shares_memory(values, np.frombuffer(mapping, dtype=np.uint8)), column


def test_bytes_artifacts_are_read_whole(start):
    _, _, raw, buf = _expected()
    assert type(start.data.raw) is bytes and start.data.raw == raw
    assert type(start.data.buf) is bytearray and start.data.buf == buf
    assert start.data.zeros == bytes(N)


def test_a_flipped_byte_in_a_bytes_blob_is_an_error(own):
    for name in ("raw", "zeros"):
        _flip_byte(_path(own, name), 100)
    fresh = Flow("ArraysFlow").latest_run["start"].task
    for name in ("raw", "zeros"):
        with pytest.raises(_core.DatastoreError, match=rf"artifact ArraysFlow/1/start/1/{name}: .*blob"):
            _ = getattr(fresh.data, name)


def test_get_bytes_refuses_a_blob_of_several_segments(start):
    store = _core.ArtifactStore(start._root)
    with pytest.raises(ValueError, match=r"has 2 segments, not one"):
        store.get_bytes(start["x"].sha)


def _anonymous_kb() -> int:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1])
    raise AssertionError("no Anonymous line in smaps_rollup")


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux smaps_rollup")
def test_loading_an_array_costs_no_private_memory_for_its_data(start):
    assert "x" in start.data  # the records are read; the values not yet
    before = _anonymous_kb()
    x = start.data.x
    assert float(x.sum()) > 0  # every page of the array touched
    grown_kb = _anonymous_kb() - before
    # 8 MiB of array: a copy would add 8192 KB of anonymous memory.
    assert grown_kb < 2048, f"loading grew private memory by {grown_kb} KB"
