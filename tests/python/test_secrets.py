"""@secrets with cairn's local providers: values reach the task's
environment, and are never stored as artifacts, in logs or in the datastore."""

from __future__ import annotations

import json
import os

from cairn import Flow

FLOW = """
import os
from cairn import FlowSpec, secrets, step


class SecretFlow(FlowSpec):
    @secrets(sources=["db-creds", {"type": "env", "id": "api"}])
    @step
    def start(self):
        self.password_ok = os.environ["DB_PASSWORD"] == "pw-5f1e9c"
        self.api_key_ok = os.environ["API_KEY"] == "key-77aa31"
        self.next(self.end)

    @step
    def end(self):
        self.outside_step = "DB_PASSWORD" in os.environ


if __name__ == "__main__":
    SecretFlow()
"""


def _all_bytes(root):
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                yield name, f.read()


def test_secrets_reach_the_task_and_nothing_else(runner):
    flow = runner.write("secret_flow.py", FLOW)
    store = runner.dir / "secrets.json"
    store.write_text(json.dumps({"db-creds": {"DB_PASSWORD": "pw-5f1e9c"}}))
    env = {"CAIRN_SECRETS_FILE": str(store), "CAIRN_SECRET_API": json.dumps({"API_KEY": "key-77aa31"})}
    proc = runner.run(flow, "run", env=env, check=True)
    run = Flow("SecretFlow").latest_run
    assert run["start"].task.data.password_ok and run["start"].task.data.api_key_ok
    assert run["end"].task.data.outside_step is False
    for secret in (b"pw-5f1e9c", b"key-77aa31"):
        assert secret.decode() not in proc.stdout + proc.stderr
        for name, data in _all_bytes(runner.root):
            assert secret not in data, f"a secret is stored in {name}"


def test_missing_source_fails_the_task_without_showing_values(runner):
    flow = runner.write("secret_flow.py", FLOW)
    store = runner.dir / "secrets.json"
    store.write_text(json.dumps({"other": {"X": "pw-5f1e9c"}}))
    proc = runner.run(flow, "run", env={"CAIRN_SECRETS_FILE": str(store)})
    assert proc.returncode == 1
    assert f"CAIRN_SECRETS_FILE {store} has no secret source 'db-creds'" in proc.stdout + proc.stderr
    assert "pw-5f1e9c" not in proc.stdout + proc.stderr
