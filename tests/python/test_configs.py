"""Configs, from Metaflow's "Configuring Flows" pages: a Config read from its
default file, --config NAME FILE and --config-value NAME VALUE, used in
decorator arguments, config_expr and Parameter defaults, stored with the
run and reused by resume. The flow runs on Metaflow after changing its import."""

from __future__ import annotations

import json

from cairn import Flow, _core

FLOW = """
import os
from cairn import Config, FlowSpec, Parameter, config_expr, current, resources, retry, step


class ConfigFlow(FlowSpec):
    cfg = Config("cfg", default="cfg.json")
    tuning = Config("tuning", default_value={"alpha": 0.5, "retries": 1})
    alpha = Parameter("alpha", default=tuning.alpha)

    @retry(times=config_expr("tuning.retries"), minutes_between_retries=0)
    @resources(cpu=cfg.cpu)
    @step
    def start(self):
        self.seen = {"cpu": self.cfg.cpu, "model": self.cfg.model.name, "alpha": self.alpha}
        if current.retry_count < self.tuning.retries:
            raise RuntimeError("first attempt fails")
        self.next(self.end)

    @step
    def end(self):
        if os.environ.get("FAIL_END"):
            raise RuntimeError("end fails")
        self.model_at_end = self.cfg["model"]["name"]
        print("model", self.model_at_end)


if __name__ == "__main__":
    ConfigFlow()
"""


def _graph(runner, run_id):
    return json.loads(_core.Datastore(str(runner.root), readonly=True).get_run("ConfigFlow", run_id).graph_json)


def test_configs_feed_decorators_parameters_and_steps(runner):
    flow = runner.write("config_flow.py", FLOW)
    (runner.dir / "cfg.json").write_text(json.dumps({"cpu": 2, "model": {"name": "m1"}}))
    runner.run(flow, "run", check=True)
    run = Flow("ConfigFlow").latest_run
    start = run["start"].task
    assert start.data.seen == {"cpu": 2, "model": "m1", "alpha": 0.5}
    # @retry(times=config_expr("tuning.retries")) with retries=1: two attempts.
    assert [a.status for a in start.attempts] == ["failed", "succeeded"]
    assert run.data.cfg.model.name == "m1"  # configs are artifacts of the run, as in Metaflow
    assert _graph(runner, int(run.id))["configs"] == {
        "cfg": {"cpu": 2, "model": {"name": "m1"}}, "tuning": {"alpha": 0.5, "retries": 1}}

    (runner.dir / "other.json").write_text(json.dumps({"cpu": 4, "model": {"name": "m2"}}))
    runner.run(flow, "--config", "cfg", "other.json",
               "--config-value", "tuning", '{"alpha": 0.25, "retries": 0}', "run", check=True)
    start = Flow("ConfigFlow").latest_run["start"].task
    assert start.data.seen == {"cpu": 4, "model": "m2", "alpha": 0.25}
    assert [a.status for a in start.attempts] == ["succeeded"]

    # The Parameter's type comes from the config's value (a float).
    runner.run(flow, "run", "--alpha", "0.75", check=True)
    assert Flow("ConfigFlow").latest_run["start"].task.data.seen["alpha"] == 0.75


def test_resume_uses_the_origin_runs_configs(runner):
    flow = runner.write("config_flow.py", FLOW)
    (runner.dir / "cfg.json").write_text(json.dumps({"cpu": 1, "model": {"name": "origin"}}))
    proc = runner.run(flow, "run", env={"FAIL_END": "1"})
    assert proc.returncode == 1
    (runner.dir / "cfg.json").write_text(json.dumps({"cpu": 1, "model": {"name": "changed"}}))
    proc = runner.run(flow, "--config", "cfg", "cfg.json", "resume")
    assert proc.returncode == 1
    assert "resume uses the configs of the run it resumes" in proc.stderr
    assert "Traceback" not in proc.stderr
    runner.run(flow, "resume", check=True)
    run = Flow("ConfigFlow").latest_run
    assert run["end"].task.data.model_at_end == "origin"
    assert _graph(runner, int(run.id))["configs"]["cfg"]["model"]["name"] == "origin"


def test_bad_configs_get_one_line_errors(runner):
    flow = runner.write("config_flow.py", FLOW)
    proc = runner.run(flow, "run")  # no cfg.json, and no default_value
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("Bad config: config 'cfg': default file cfg.json does not exist; "
                                   "pass --config cfg FILE")
    (runner.dir / "cfg.json").write_text("{not json")
    proc = runner.run(flow, "run")
    assert proc.returncode == 1 and "config 'cfg': file cfg.json could not be parsed" in proc.stderr
    assert "Traceback" not in proc.stderr
    (runner.dir / "cfg.json").write_text("{}")
    proc = runner.run(flow, "--config-value", "nope", "{}", "run")
    assert proc.returncode == 1
    assert "has no config named 'nope' (its configs: cfg, tuning)" in proc.stderr
    proc = runner.run(flow, "run")  # {} has no cpu: @resources(cpu=cfg.cpu) cannot resolve
    assert proc.returncode == 1 and "config 'cfg' has no cfg.cpu" in proc.stderr


def test_parser_by_name_and_config_value_api():
    from cairn import Config, ConfigValue
    from cairn.config import read_configs

    class Holder:
        toml = Config("toml", default_value='[db]\nport = 5432\n', parser="tomllib.loads")

    read_configs(Holder)
    value = Holder.toml._value
    assert isinstance(value, ConfigValue) and value.db.port == 5432 and value["db"]["port"] == 5432
    assert value.to_dict() == {"db": {"port": 5432}}
    try:
        value.db = 1
    except TypeError as e:
        assert "read-only" in str(e)
    else:
        raise AssertionError("a ConfigValue must be read-only")
