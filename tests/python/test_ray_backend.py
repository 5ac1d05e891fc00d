"""Steps on a real 3-node Ray cluster (all on 127.0.0.1) with artifacts in a
real S3-compatible server: the engine schedules, the sidecar carries tasks
out, slot actors fork them on the nodes (docs/ray.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from ray_cluster import LOOPBACK, listening_addresses, local_cluster
from s3_server import s3_server_for_tests

pytestmark = [pytest.mark.ray, pytest.mark.s3, pytest.mark.e2e]
pytest.importorskip("ray", reason="the Ray tests need cairn[ray] (scripts/dev.sh installs it)")


@pytest.fixture(scope="module")
def s3():
    with s3_server_for_tests() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(s3):
    # After the S3 server: the nodes inherit its credentials from this
    # process, as a real cluster's nodes have their own credential chain.
    with local_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def node_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ray-nodes")


@pytest.fixture
def ray_env(s3, cluster, node_cache, runner, monkeypatch) -> dict[str, str]:
    bucket = s3.new_bucket()
    env = {**s3.env(bucket), "CAIRN_RAY_ADDRESS": cluster.address,
           "CAIRN_RAY_NODE_CACHE": str(node_cache), "RAY_ADDRESS": ""}
    runner.env.update(env)
    for k, v in env.items():  # the client in this process reads S3 as a notebook would
        monkeypatch.setenv(k, v)
    runner.bucket = bucket
    return env


def test_every_node_listens_on_loopback_only(cluster):
    import ipaddress

    assert cluster.address.startswith(f"{LOOPBACK}:")
    addresses = listening_addresses(cluster.pids())

    def loopback(a: str) -> bool:
        ip = ipaddress.ip_address(a)
        return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)

    assert addresses and all(loopback(a) for a in addresses), addresses


FOREACH = """
    import os, random, sys
    from cairn import FlowSpec, step

    class SpreadFlow(FlowSpec):
        @step
        def start(self):
            self.items = list(range(30))
            self.next(self.work, foreach="items")

        @step
        def work(self):
            self.node = os.environ["CAIRN_RAY_NODE_ID"]
            self.i = self.input
            self.data = random.Random(self.input).randbytes(5 << 20)
            # The node's fork server leaves S3 to its slot actor (stores/proxy.py).
            self.boto3_loaded = "boto3" in sys.modules
            print("item", self.input, "on", self.node[:8])
            self.next(self.join)

        @step
        def join(self, inputs):
            self.nodes = sorted({i.node for i in inputs})
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        SpreadFlow()
"""


def test_foreach_spreads_over_all_nodes_and_reads_back_on_the_head(runner, ray_env, s3, cluster,
                                                                     node_cache):
    flow = runner.write("spread.py", FOREACH)
    proc = runner.run(flow, "run", "--with", "ray", check=True, timeout=600)
    assert "item 7 on" in proc.stdout  # the node's output reached the console
    from cairn import Flow

    run = Flow("SpreadFlow").latest_run
    assert run.successful
    assert set(run.data.nodes) == {cluster.head_id, cluster.gpu_id, cluster.plain_id}
    import random

    tasks = list(run["work"])
    assert len(tasks) == 30
    for t in tasks:  # every 5 MB artifact, from S3 through this machine's cache
        assert t["data"].data == random.Random(t.data.i).randbytes(5 << 20)
        assert t["boto3_loaded"].data is False

    # S3 holds exactly the bytes of the blob files: on the nodes and on the head.
    digest = tasks[0]["data"]._rec.digest
    key = f"cairn/objects/{digest[:2]}/{digest[2:]}"
    remote = s3.client().get_object(Bucket=runner.bucket, Key=key)["Body"].read()
    head_copy = (runner.root / "objects" / digest[:2] / digest[2:]).read_bytes()
    node_copies = [p.read_bytes() for p in node_cache.glob(f"*/objects/{digest[:2]}/{digest[2:]}")]
    assert remote == head_copy and node_copies and all(c == remote for c in node_copies)

    logs = runner.run(flow, "logs", f"{run.id}/work/{tasks[0].id}", check=True)
    assert "item" in logs.stdout

    # The same run again: every blob is already there, none is written again.
    before = s3.objects(runner.bucket)
    runner.run(flow, "run", "--with", "ray", check=True, timeout=600)
    assert s3.objects(runner.bucket) == before


def test_gpu_steps_land_on_the_gpu_node_and_impossible_ones_fail_fast(runner, ray_env, cluster):
    flow = runner.write("gpu.py", """
        import os, sys
        from cairn import FlowSpec, ray, resources, step

        class GpuFlow(FlowSpec):
            @resources(gpu=1)
            @ray
            @step
            def start(self):
                self.node = os.environ["CAIRN_RAY_NODE_ID"]
                self.next(self.labelled)

            @ray(label_selector={"accel": "gpu"})
            @step
            def labelled(self):
                self.labelled_node = os.environ["CAIRN_RAY_NODE_ID"]
                self.next(self.end)

            @step
            def end(self):
                self.local = "CAIRN_RAY_NODE_ID" not in os.environ
                # The run uploaded its code package after forking this worker.
                self.boto3_loaded = "boto3" in sys.modules

        if __name__ == "__main__":
            GpuFlow()
    """)
    runner.run(flow, "run", check=True, timeout=300)
    from cairn import Flow

    data = Flow("GpuFlow").latest_run.data
    assert data.node == cluster.gpu_id and data.labelled_node == cluster.gpu_id
    assert data.local  # a step without @ray ran here
    assert data.boto3_loaded is False

    flow.write_text(flow.read_text().replace("@resources(gpu=1)", "@resources(gpu=2)"))
    proc = runner.run(flow, "run", "--ray-pending-timeout", "3600", timeout=300)
    assert proc.returncode == 1
    assert "no node of the Ray cluster can ever provide cpu=1, gpu=2" in proc.stdout + proc.stderr
    assert "GPU=1" in proc.stdout + proc.stderr  # ... and what the cluster has


def _wait_for(token: str, proc: subprocess.Popen) -> list[str]:
    """Reads the run's output until a line has `token` (the step printed it:
    output streams from the node while the step runs); the lines so far."""
    seen = []
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if token in line:
            return seen
    raise AssertionError("the run ended first:\n" + "".join(seen))


BLOCKING = """
    import os, time
    from cairn import FlowSpec, step, timeout

    class BlockFlow(FlowSpec):
        @timeout(seconds=TIMEOUT)
        @step
        def start(self):
            with open("MARKER", "w") as f:
                f.write(f"{os.getpid()} {os.environ['CAIRN_RAY_NODE_ID']}")
            print("started", flush=True)
            os.read(os.open("FIFO", os.O_RDONLY), 1)  # blocks until killed
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        BlockFlow()
"""


def _blocking_flow(runner, seconds: int) -> tuple[Path, Path]:
    marker = runner.dir / "marker"
    fifo = runner.dir / "fifo"
    os.mkfifo(fifo)
    source = (BLOCKING.replace("TIMEOUT", str(seconds)).replace("MARKER", str(marker))
              .replace("FIFO", str(fifo)))
    return runner.write("block.py", source), marker


def _node_workers(node_cache: Path) -> list[int]:
    import psutil

    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "ray-node-worker" in cmd and str(node_cache) in cmd:
            out.append(p.pid)
    return out


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_timeout_kills_the_task_on_its_node(runner, ray_env, node_cache):
    flow, marker = _blocking_flow(runner, 1)
    proc = runner.run(flow, "run", "--with", "ray", timeout=300)
    assert proc.returncode == 1
    assert "timed out" in proc.stdout + proc.stderr
    pid = int(marker.read_text().split()[0])
    assert _gone(pid)
    assert not _node_workers(node_cache)


@contextmanager
def _blocked_run(runner) -> Iterator[tuple[subprocess.Popen, int]]:
    """A run whose remote `start` blocks, in a session of its own, once the
    step has started on its node: (the run's process, the task's pid).
    Killed (with its group) if still running at the end of the block."""
    flow, marker = _blocking_flow(runner, 0)
    proc = subprocess.Popen([sys.executable, str(flow), "run", "--with", "ray"], cwd=runner.dir,
                            env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        _wait_for("started", proc)
        yield proc, int(marker.read_text().split()[0])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ctrl_c_stops_every_remote_task(runner, ray_env, node_cache):
    with _blocked_run(runner) as (proc, pid):
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal does
        proc.wait(timeout=120)
    assert proc.returncode != 0
    assert _gone(pid)
    assert not _node_workers(node_cache)


def test_a_hung_sidecar_is_killed_and_its_attempts_recorded_lost(runner, ray_env):
    """A sidecar that is alive but answers nothing (stopped here) cannot hang
    the run: after a kill it gets no answer to, the engine kills the sidecar's
    process group and records the remote attempt as lost."""
    import psutil

    with _blocked_run(runner) as (proc, pid):
        task = psutil.Process(pid)
        [sidecar] = [p for p in psutil.Process(proc.pid).children()
                     if "cairn.backends.ray.sidecar" in " ".join(p.cmdline())]
        os.kill(sidecar.pid, signal.SIGSTOP)
        try:
            os.killpg(proc.pid, signal.SIGINT)
            out, _ = proc.communicate(timeout=120)
            assert not sidecar.is_running() or sidecar.status() == psutil.STATUS_ZOMBIE
        finally:  # in its own session: the run's group is not its group
            if sidecar.is_running():
                sidecar.kill()
    assert proc.returncode != 0, out
    from cairn import Flow

    assert [a.status for a in Flow("BlockFlow").latest_run["start"].task.attempts] == ["lost"]
    # The sidecar was the Ray driver: Ray ends its actors, their fork servers and the task.
    task.wait(timeout=120)


def test_aws_keys_reach_the_nodes_only_when_the_run_opts_in(runner, ray_env):
    """By default a node uses its own credentials (here: the cluster's
    environment); the run's keys travel only with CAIRN_RAY_FORWARD_AWS_CREDENTIALS=1."""
    flow = runner.write("keys.py", """
        import os
        from cairn import FlowSpec, ray, step

        class KeysFlow(FlowSpec):
            @ray
            @step
            def start(self):
                self.key_id = os.environ.get("AWS_ACCESS_KEY_ID")
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            KeysFlow()
    """)
    from cairn import Flow

    laptop = {"AWS_ACCESS_KEY_ID": "laptop-key", "AWS_SECRET_ACCESS_KEY": "laptop-secret"}
    runner.run(flow, "run", env=laptop, check=True, timeout=300)
    assert Flow("KeysFlow").latest_run.data.key_id == os.environ["AWS_ACCESS_KEY_ID"] != "laptop-key"
    runner.run(flow, "run", env={**laptop, "CAIRN_RAY_FORWARD_AWS_CREDENTIALS": "1"}, check=True,
               timeout=300)
    assert Flow("KeysFlow").latest_run.data.key_id == "laptop-key"


def test_a_lost_node_gives_a_lost_attempt_and_the_retry_succeeds(runner, ray_env, cluster):
    doomed = cluster.cluster.add_node(node_ip_address=LOOPBACK, num_cpus=1, resources={"spot": 1},
                                      include_dashboard=False, object_store_memory=100 << 20)
    cluster.cluster.wait_for_nodes()
    flow = runner.write("lost.py", f"""
        import os
        from cairn import FlowSpec, current, ray, retry, step

        class LostFlow(FlowSpec):
            @retry(times=1, minutes_between_retries=0)
            @ray(resources={{"spot": 1}})
            @step
            def start(self):
                self.node = os.environ["CAIRN_RAY_NODE_ID"]
                if current.retry_count == 0:
                    print("attempt0", self.node, flush=True)
                    os.read(os.open({str(runner.dir / "never")!r}, os.O_RDONLY), 1)
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            LostFlow()
    """)
    os.mkfifo(runner.dir / "never")
    proc = subprocess.Popen([sys.executable, str(flow), "run"], cwd=runner.dir, env=runner.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = _wait_for("attempt0", proc)[-1].split()[-1]
        assert first == doomed.node_id
        cluster.cluster.add_node(node_ip_address=LOOPBACK, num_cpus=1, resources={"spot": 1},
                                 include_dashboard=False, object_store_memory=100 << 20)
        cluster.cluster.remove_node(doomed, allow_graceful=False)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    from cairn import Flow

    task = Flow("LostFlow").latest_run["start"].task
    assert task.data.node != doomed.node_id
    assert [a.status for a in task.attempts] == ["lost", "succeeded"]


def test_the_code_package_runs_where_the_flow_file_does_not_exist(runner, ray_env, node_cache):
    (runner.dir / "helpers").mkdir()
    (runner.dir / "helpers" / "__init__.py").write_text("ANSWER = 42\n")
    flow = runner.write("packaged.py", """
        import os, sys
        from cairn import S3, FlowSpec, ray, step
        from helpers import ANSWER

        class PackagedFlow(FlowSpec):
            @ray
            @step
            def start(self):
                self.where = os.path.abspath(sys.modules["__main__"].__file__)
                self.answer = ANSWER
                # A flow that uses cairn's S3 client: its node loaded boto3 once, before forking.
                self.boto3_loaded = "boto3" in sys.modules
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            PackagedFlow()
    """)
    runner.run(flow, "run", check=True, timeout=300)
    from cairn import Flow

    data = Flow("PackagedFlow").latest_run["start"].task.data
    assert data.answer == 42
    assert data.boto3_loaded is True
    assert data.where.startswith(str(node_cache)) and data.where.endswith("packaged.py")
    assert not data.where.startswith(str(runner.dir))


def test_resume_crosses_backends(runner, ray_env):
    """A run that failed locally resumes on Ray (its inputs exist only on this
    machine until the sidecar uploads them), and a Ray run resumes locally."""
    flag = runner.dir / "fail-check"
    flow = runner.write("resumable.py", """
        import os
        from cairn import FlowSpec, Parameter, step

        class ResumableFlow(FlowSpec):
            size = Parameter("size", default=3 << 20)

            @step
            def start(self):
                self.data = os.urandom(self.size)
                self.next(self.check)

            @step
            def check(self):
                if os.path.exists(FLAG):
                    raise RuntimeError("failing on purpose")
                self.where = os.environ.get("CAIRN_RAY_NODE_ID", "local")
                self.length = len(self.data)
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            ResumableFlow()
    """.replace("FLAG", repr(str(flag))))
    local_only = {k: "" for k in ("CAIRN_DATASTORE_SYSROOT_S3", "CAIRN_S3_ENDPOINT_URL")}
    flag.touch()
    assert runner.run(flow, "run", env=local_only).returncode == 1
    flag.unlink()
    runner.run(flow, "resume", "--with", "ray", check=True, timeout=300)
    from cairn import Flow

    data = Flow("ResumableFlow").latest_run.data
    assert data.where != "local" and data.length == 3 << 20

    flag.touch()
    assert runner.run(flow, "run", "--with", "ray", timeout=300).returncode == 1
    flag.unlink()
    runner.run(flow, "resume", "check", check=True, timeout=300)
    data = Flow("ResumableFlow").latest_run.data
    assert data.where == "local" and data.length == 3 << 20
