"""Where cairn must behave as Metaflow does: bare decorators, strict
Parameters, reserved parameter names, read-only flow attributes, @timeout
as an exception in the step, atomic merge_artifacts, retries without a wait,
foreach errors, and Metaflow names cairn does not provide yet."""

from __future__ import annotations

from cairn import Flow


def _flow(runner, name, body):
    """A flow file with `body` as its class body; an `end` step that does
    nothing is added unless the body has one."""
    if "def end(" not in body:
        body += """
            @step
            def end(self):
                pass
        """
    return runner.write(f"{name.lower()}.py", f"""
        import os, time
        from cairn import FlowSpec, Parameter, catch, current, resources, retry, step, timeout

        class {name}(FlowSpec):
        {body}

        if __name__ == "__main__":
            {name}()
        """)


def test_bare_decorators_work_like_empty_parentheses(runner):
    flow = _flow(runner, "BareFlow", """
            @retry
            @catch
            @resources
            @timeout
            @step
            def start(self):
                if current.retry_count == 0:
                    raise RuntimeError("once")
                self.next(self.end)
        """)
    runner.run(flow, "run", check=True)
    # retry's default (3 times) at once: Metaflow's local runtime does not wait
    # minutes_between_retries (default 2) either.
    assert [a.status for a in Flow("BareFlow").latest_run["start"].task.attempts] == ["failed", "succeeded"]


def test_parameters_are_strict_and_honour_separator(runner):
    flow = _flow(runner, "ParamFlow", """
            ids = Parameter("ids", default="1,2", type=int, separator=",")
            alpha = Parameter("alpha", defualt=0.5)

            @step
            def start(self):
                self.next(self.end)
        """)
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("Bad parameter: Parameter('alpha') got unknown keyword argument(s) defualt; "
                                   "it takes default, type, help, required, show_default, separator and is_flag")
    flow.write_text(flow.read_text().replace("defualt=0.5", "default=0.5"))
    runner.run(flow, "run", check=True)
    assert Flow("ParamFlow").latest_run["end"].task.data.ids == [1, 2]
    runner.run(flow, "run", "--ids", "3,4,5", check=True)
    assert Flow("ParamFlow").latest_run["end"].task.data.ids == [3, 4, 5]


def test_parameter_names_that_are_run_options_are_reserved(runner):
    flow = _flow(runner, "TagFlow", """
            tag = Parameter("tag", default="x")

            @step
            def start(self):
                self.next(self.end)
        """)
    for command in (["run"], ["check"], ["show"]):
        proc = runner.run(flow, *command)
        assert proc.returncode == 1
        assert proc.stderr.strip() == ("Bad parameter: Parameter name 'tag' is a reserved word. "
                                       "Please use a different name for your parameter.")


def test_flow_attributes_and_parameters_are_not_modifiable(runner):
    flow = _flow(runner, "ConstFlow", """
            int_const = 123
            alpha = Parameter("alpha", default=1)

            @step
            def start(self):
                name = os.environ["ASSIGN"]
                setattr(self, name, 122)
                self.next(self.end)
        """)
    for name in ("int_const", "alpha"):
        proc = runner.run(flow, "run", env={"ASSIGN": name})
        assert proc.returncode == 1
        assert (f"AttributeError: Cannot set self.{name} in step 'start': Flow level attributes and "
                f"Parameters are not modifiable") in proc.stdout + proc.stderr


def test_timeout_raises_in_the_step_so_catch_and_finally_run(runner):
    flow = _flow(runner, "TimeoutFlow", """
            @catch(var="timed_out", print_exception=False)
            @timeout(seconds=1)
            @step
            def start(self):
                self.before = "kept"
                try:
                    time.sleep(60)
                finally:
                    open("finally.ran", "w").close()
                self.next(self.end)

            @step
            def end(self):
                self.failure = str(self.timed_out)
        """)
    runner.run(flow, "run", check=True)
    run = Flow("TimeoutFlow").latest_run
    assert (runner.dir / "finally.ran").exists()
    assert run["start"].task.data.before == "kept"
    assert run["end"].task.data.failure.startswith("TimeoutException: step 'start' timed out after 1 s")


def test_timeout_kills_a_step_that_ignores_it_after_a_grace(runner):
    flow = _flow(runner, "StubbornFlow", """
            @timeout(seconds=1)
            @step
            def start(self):
                while True:
                    try:
                        time.sleep(60)
                    except Exception:
                        pass
                self.next(self.end)
        """)
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    attempt = Flow("StubbornFlow").latest_run["start"].task.attempts[0]
    assert (attempt.status, attempt.signal) == ("timeout", 9)
    assert attempt.reason == "the task timed out after 2 s"  # 1 s, then a 1 s grace


def test_merge_artifacts_sets_nothing_when_it_raises(runner):
    flow = _flow(runner, "MergeFlow", """
            @step
            def start(self):
                self.next(self.a, self.b)

            @step
            def a(self):
                self.same = 1
                self.differs = "a"
                self.next(self.join)

            @step
            def b(self):
                self.same = 1
                self.differs = "b"
                self.next(self.join)

            @step
            def join(self, inputs):
                try:
                    self.merge_artifacts(inputs)
                except Exception:  # Metaflow's MergeArtifactsException, cairn's MergeArtifactsError
                    self.raised = True
                self.same_was_set = hasattr(self, "same")
                self.next(self.end)
        """)
    runner.run(flow, "run", check=True)
    join = Flow("MergeFlow").latest_run["join"].task
    assert join.data.raised is True and join.data.same_was_set is False


def test_retry_does_not_wait_minutes_between_retries_locally(runner):
    flow = _flow(runner, "WaitFlow", """
            @retry(times=1, minutes_between_retries=30)
            @step
            def start(self):
                if current.retry_count == 0:
                    raise RuntimeError("once")
                self.next(self.end)
        """)
    runner.run(flow, "run", check=True, timeout=60)  # a 30-minute wait would time out
    assert len(Flow("WaitFlow").latest_run["start"].task.attempts) == 2


def test_foreach_over_a_non_iterable_names_the_foreach_and_the_step(runner):
    flow = _flow(runner, "BadForeachFlow", """
            @step
            def start(self):
                self.items = 5
                self.next(self.each, foreach="items")

            @step
            def each(self):
                self.next(self.join)

            @step
            def join(self, inputs):
                self.next(self.end)
        """)
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    assert ("foreach over self.items in step 'start': the value is a int, which is not iterable"
            in proc.stdout + proc.stderr)


def test_metaflow_names_not_provided_yet_import_and_fail_clearly(runner):
    import cairn

    for name in ("pypi", "pypi_base", "conda", "conda_base", "pytorch_parallel"):
        assert hasattr(cairn, name), name
    flow = runner.write("pypi_flow.py", """
        from cairn import FlowSpec, pypi, pypi_base, step

        class PypiFlow(FlowSpec):
            @pypi(packages={"pandas": "2.2.0"}, disabled=DISABLED)
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            PypiFlow()
        """)
    source = flow.read_text()
    flow.write_text(source.replace("DISABLED", "False"))
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Not available in cairn: @pypi is not available in cairn: cairn runs every "
                                  "task in the Python environment that runs the flow")
    assert "Traceback" not in proc.stderr
    flow.write_text(source.replace("DISABLED", "True"))
    runner.run(flow, "run", check=True)


def test_decorator_errors_while_the_flow_file_loads_are_one_line(runner):
    flow = runner.write("badargs.py", """
        from cairn import FlowSpec, project, retry, step

        @project
        class BadArgsFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            BadArgsFlow()
        """)
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    assert proc.stderr == "cairn error: @project needs a name: @project(name='my_project')\n"
    proc = runner.run(flow, "run", env={"CAIRN_DEBUG": "1"})
    assert "Traceback" in proc.stderr  # kept for debugging
