"""@project, from Metaflow's "Coordinating Larger Metaflow Projects": the
branch each run belongs to (--branch, --production), `current`'s project
fields, and the project and branch as system tags."""

from __future__ import annotations

from cairn import Flow

FLOW = """
from cairn import FlowSpec, current, project, step


@project(name="demo")
class ProjectFlow(FlowSpec):
    @step
    def start(self):
        self.info = {
            "project_name": current.project_name,
            "branch_name": current.branch_name,
            "project_flow_name": current.project_flow_name,
            "is_user_branch": current.is_user_branch,
            "is_production": current.is_production,
        }
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectFlow()
"""



def test_branches_current_and_system_tags(runner):
    flow = runner.write("project_flow.py", FLOW)
    env = {"CAIRN_USER": "alice"}
    cases = [
        ([], "user.alice", True, False),
        (["--branch", "feature_x"], "test.feature_x", False, False),
        (["--production"], "prod", False, True),
        (["--production", "--branch", "v2"], "prod.v2", False, True),
    ]
    for options, branch, user_branch, production in cases:
        runner.run(flow, *options, "run", check=True, env=env)
        run = Flow("ProjectFlow").latest_run
        assert run["start"].task.data.info == {
            "project_name": "demo", "branch_name": branch,
            "project_flow_name": f"demo.{branch}.ProjectFlow",
            "is_user_branch": user_branch, "is_production": production,
        }, options
        assert {"project:demo", f"project_branch:{branch}", "user:alice"} <= set(run.system_tags)


def test_branch_options_need_project_and_valid_names(runner):
    flow = runner.flow("plain_flow.py")
    proc = runner.run(flow, "--branch", "x", "run")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "cairn error: --branch applies to flows with @project; PlainFlow has none"
    flow = runner.write("project_flow.py", FLOW)
    proc = runner.run(flow, "--branch", "Bad Branch", "run")
    assert proc.returncode == 1 and "branch 'Bad Branch' may only contain" in proc.stderr
    assert "Traceback" not in proc.stderr
