"""The Ray backend's checks before anything runs, without a cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest

FLOW = """
    from cairn import FlowSpec, DECO, step

    class RemoteFlow(FlowSpec):
        @DECO(cpu=2, memory=1024)
        @step
        def start(self):
            open("ran", "w").write("yes")
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        RemoteFlow()
"""


@pytest.mark.parametrize("deco", ["kubernetes", "batch"])
def test_cloud_decorators_without_with_ray_fail_before_anything_runs(runner, deco):
    flow = runner.write("remote.py", FLOW.replace("DECO", deco))
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Ray backend: step 'start' has @{deco}, which cairn runs on a Ray cluster: add --with ray "
        f"and a cluster address (--ray-address or CAIRN_RAY_ADDRESS); nothing was run"]
    assert not (runner.dir / "ran").exists()
    assert not (runner.root / "cairn.db").exists() or "RemoteFlow" not in proc.stdout


def test_without_ray_installed_with_ray_gives_the_install_hint(runner):
    # A finder that answers for `ray` exactly as a missing package does.
    (runner.dir / "noray").mkdir()
    (runner.dir / "noray" / "sitecustomize.py").write_text(
        "import sys\n"
        "class NoRay:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n"
        "sys.meta_path.insert(0, NoRay())\n")
    flow = runner.write("remote.py", FLOW.replace("DECO", "kubernetes"))
    proc = runner.run(flow, "run", "--with", "ray", "--ray-address", "127.0.0.1:1",
                      env={"PYTHONPATH": str(runner.dir / "noray")})
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Ray backend: running steps on Ray needs Ray: pip install 'cairn[ray]'"
    assert not (runner.dir / "ran").exists()


def test_no_cluster_address_is_an_error_never_an_implicit_attach(runner):
    pytest.importorskip("ray")
    flow = runner.write("remote.py", FLOW.replace("DECO", "ray"))
    env = {"CAIRN_RAY_ADDRESS": "", "RAY_ADDRESS": ""}
    proc = runner.run(flow, "run", env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Ray backend: no Ray cluster address: pass --ray-address")


def test_aws_keys_reach_the_cluster_only_when_asked(runner):
    from cairn.backends.launch import forwarded_credentials

    env = {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_PROFILE": "laptop",
           "AWS_REGION": "eu-west-1"}
    assert forwarded_credentials(env) == {}  # the node's own chain by default
    assert forwarded_credentials({**env, "CAIRN_RAY_FORWARD_AWS_CREDENTIALS": "0"}) == {}
    # A laptop's profile name means nothing on a node: never sent.
    assert forwarded_credentials({**env, "CAIRN_RAY_FORWARD_AWS_CREDENTIALS": "1"}) == {
        "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_REGION": "eu-west-1"}

    pytest.importorskip("ray")
    flow = runner.write("remote.py", FLOW.replace("DECO", "ray"))
    env = {"CAIRN_RAY_ADDRESS": "127.0.0.1:1", "CAIRN_DATASTORE_SYSROOT_S3": "s3://b/p",
           "CAIRN_RAY_FORWARD_AWS_CREDENTIALS": "sure"}
    proc = runner.run(flow, "run", env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("Ray backend: CAIRN_RAY_FORWARD_AWS_CREDENTIALS='sure': expected 1 "
                                   "(send this run's AWS keys to the cluster) or 0")
    assert not (runner.dir / "ran").exists()


def test_import_cairn_never_imports_ray():
    code = ("import sys, cairn\n"
            "from cairn import batch, kubernetes, ray, resources\n"
            "import cairn.backends.launch, cairn.backends.ray.node_worker, cairn.stores\n"
            "assert 'ray' not in sys.modules and 'boto3' not in sys.modules, sorted(sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_with_ray_parses_and_requests_merge_like_metaflow():
    from cairn.backends.ray.resources import request_of
    from cairn.decorators import parse_with, resources

    d = parse_with("ray:cpu=2,resources={'pool':1}")
    step = {"options": {**resources(cpu=4, memory=2048).graph_options(), **d.graph_options()}}
    r = request_of(step)
    assert (r.cpu, r.gpu, r.memory_mb, r.custom) == (4, 0, 2048, {"pool": 1.0})
    assert step["options"]["backend"] == "ray"
