from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

import pytest

from engine.commands import ResolvedCommand, ValidatedCommand, ValidatedPlan
from engine.dry_run import DRY_RUN_NOT_RUN_REASON, dry_run_variant
from engine.executors.base import ExecutionContext
from engine.orchestrator import Cancellation, Orchestrator
from engine.plan import CommandSpec, ExecutionMode, FailurePolicy, Plan, PlanCommand, SdkCall
from engine.results import CommandResult, PlanResult, RunState
from engine.risk import Risk
from engine.sinks import CommandStateChanged, Event, ListSink, OutputLine, OutputSink, PlanStateChanged
from tests.fakes import Script, ScriptedExecutor, SleepExecutor

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def resolved(
    command_id: str,
    *,
    operation: str | None = "ListBuckets",
    form: str = "sdk",
    service: str = "s3",
    cli_operation: str = "list-buckets",
    params: dict[str, object] | None = None,
    cli_args: list[str] | None = None,
    high_level: bool = False,
    supports_dry_run: bool = False,
) -> ResolvedCommand:
    return ResolvedCommand(
        id=command_id,
        form=form,  # type: ignore[arg-type]
        service=service,
        cli_service="s3api" if service == "s3" and not high_level else service,
        operation=operation,
        cli_operation=cli_operation,
        cli_args=cli_args,
        params={} if params is None and form == "sdk" else params,
        high_level=high_level,
        risk=Risk.MODIFY,
        display=f"{command_id}: {service}:{operation or cli_operation}",
        supports_dry_run=supports_dry_run,
    )


def step(command_id: str, *, rollback: int = 0, depends_on: Sequence[str] = (), **kwargs: object) -> ValidatedCommand:
    return ValidatedCommand(
        id=command_id,
        depends_on=list(depends_on),
        command=resolved(command_id, **kwargs),  # type: ignore[arg-type]
        rollback=[resolved(f"{command_id}.rollback.{n}", operation="DeleteBucket") for n in range(1, rollback + 1)],
    )


def make_plan(
    *commands: ValidatedCommand,
    mode: ExecutionMode = ExecutionMode.SEQUENTIAL,
    on_failure: FailurePolicy = FailurePolicy.STOP,
) -> ValidatedPlan:
    plan = Plan(
        summary="test plan",
        mode=mode,
        on_failure=on_failure,
        commands=[
            PlanCommand(
                id=c.id,
                sdk=SdkCall(service=c.command.service, operation=c.command.operation or c.command.cli_operation),
                depends_on=c.depends_on,
                rollback=[
                    CommandSpec(sdk=SdkCall(service=r.service, operation=r.operation or "x")) for r in c.rollback
                ],
            )
            for c in commands
        ],
    )
    return ValidatedPlan(plan=plan, commands=list(commands), computed_risk=Risk.MODIFY, risk=Risk.MODIFY)


async def run(
    plan: ValidatedPlan,
    executor: ScriptedExecutor,
    *,
    max_parallel: int = 8,
    dry_run: bool = False,
    sink: ListSink | None = None,
    cancellation: Cancellation | None = None,
) -> PlanResult:
    return await Orchestrator(executor, max_parallel=max_parallel).execute(
        plan, ExecutionContext(dry_run=dry_run), sink or ListSink(), cancellation=cancellation
    )


def states(result: PlanResult) -> dict[str, RunState]:
    return {c.id: c.state for c in result.commands}


def state_events(sink: ListSink) -> list[tuple[str, RunState]]:
    return [(e.command_id, e.state) for e in sink.events if isinstance(e, CommandStateChanged)]


FAIL = Script(ok=False, error_code="AccessDenied", error_message="no")


# Ordering and parallelism


async def test_sequential_runs_commands_one_at_a_time_in_plan_order() -> None:
    executor = ScriptedExecutor(default=Script(sleep=0.02))
    result = await run(make_plan(step("c"), step("a"), step("b")), executor)

    assert executor.order == ["c", "a", "b"]
    assert executor.max_in_flight == 1
    calls = executor.calls
    assert all(later.started >= earlier.ended for earlier, later in itertools.pairwise(calls))
    assert result.state is RunState.SUCCEEDED
    assert set(states(result).values()) == {RunState.SUCCEEDED}


async def test_sequential_still_waits_for_a_dependency_listed_later() -> None:
    executor = ScriptedExecutor()
    await run(make_plan(step("b", depends_on=["a"]), step("a")), executor)

    assert executor.order == ["a", "b"]


async def test_parallel_runs_all_commands_at_once() -> None:
    executor = ScriptedExecutor(default=Script(sleep=0.1))
    start = time.monotonic()
    result = await run(make_plan(*(step(f"c{i}") for i in range(5)), mode=ExecutionMode.PARALLEL), executor)

    assert executor.max_in_flight == 5
    assert time.monotonic() - start < 0.3
    assert result.state is RunState.SUCCEEDED


async def test_parallel_never_runs_more_than_max_parallel_at_once() -> None:
    executor = ScriptedExecutor(default=Script(sleep=0.02))
    result = await run(
        make_plan(*(step(f"c{i}") for i in range(10)), mode=ExecutionMode.PARALLEL), executor, max_parallel=3
    )

    assert executor.max_in_flight == 3
    assert len(executor.calls) == 10
    assert result.state is RunState.SUCCEEDED


async def test_dependency_graph_starts_a_command_as_soon_as_its_own_dependencies_finish() -> None:
    executor = ScriptedExecutor({"a": Script(sleep=0.05), "b": Script(sleep=0.3)})
    plan = make_plan(
        step("a"),
        step("b"),
        step("c", depends_on=["a"]),
        step("d", depends_on=["b"]),
        mode=ExecutionMode.DEPENDENCY_GRAPH,
    )
    result = await run(plan, executor)

    a, b, c, d = (executor.call(x) for x in "abcd")
    assert a.ended is not None and b.ended is not None
    assert a.ended <= c.started < b.ended  # no waiting for the whole first level
    assert d.started >= b.ended
    assert result.state is RunState.SUCCEEDED


async def test_dependency_graph_never_runs_more_than_max_parallel_at_once() -> None:
    executor = ScriptedExecutor(default=Script(sleep=0.02))
    roots = [step(f"r{i}") for i in range(6)]
    leaves = [step(f"l{i}", depends_on=[f"r{i}", f"r{(i + 1) % 6}"]) for i in range(6)]
    result = await run(make_plan(*roots, *leaves, mode=ExecutionMode.DEPENDENCY_GRAPH), executor, max_parallel=2)

    assert executor.max_in_flight == 2
    assert result.state is RunState.SUCCEEDED
    for i in range(6):
        leaf = executor.call(f"l{i}")
        assert all(
            (dep_end := executor.call(dep).ended) is not None and dep_end <= leaf.started
            for dep in (f"r{i}", f"r{(i + 1) % 6}")
        )


# Failure policies


async def test_dependents_of_a_failed_command_are_skipped_naming_the_dependency() -> None:
    executor = ScriptedExecutor({"a": FAIL})
    plan = make_plan(
        step("a"),
        step("b", depends_on=["a"]),
        step("c", depends_on=["b"]),
        mode=ExecutionMode.DEPENDENCY_GRAPH,
        on_failure=FailurePolicy.CONTINUE,
    )
    result = await run(plan, executor)

    assert executor.order == ["a"]
    assert states(result) == {"a": RunState.FAILED, "b": RunState.SKIPPED, "c": RunState.SKIPPED}
    assert result.command("b").skipped_reason == "dependency `a` failed"
    assert result.command("c").skipped_reason == "dependency `b` was skipped"
    assert result.command("a").result is not None and result.command("a").result.error_code == "AccessDenied"
    assert result.state is RunState.FAILED


async def test_stop_starts_nothing_after_a_failure() -> None:
    executor = ScriptedExecutor({"b": FAIL})
    sink = ListSink()
    result = await run(make_plan(step("a"), step("b"), step("c"), step("d")), executor, sink=sink)

    assert executor.order == ["a", "b"]
    assert states(result) == {
        "a": RunState.SUCCEEDED,
        "b": RunState.FAILED,
        "c": RunState.SKIPPED,
        "d": RunState.SKIPPED,
    }
    assert result.command("c").skipped_reason == "not run: `b` failed (on_failure: stop)"
    assert ("c", RunState.SKIPPED) in state_events(sink)
    assert result.state is RunState.FAILED
    assert result.rolled_back == [] and result.not_rolled_back == []


async def test_stop_in_parallel_lets_running_commands_finish_and_starts_no_more() -> None:
    executor = ScriptedExecutor({"a": Script(sleep=0.01, ok=False, error_code="Boom"), "b": Script(sleep=0.1)})
    plan = make_plan(step("a"), step("b"), step("c"), step("d"), mode=ExecutionMode.PARALLEL)
    result = await run(plan, executor, max_parallel=2)

    assert executor.order == ["a", "b"]
    assert states(result) == {
        "a": RunState.FAILED,
        "b": RunState.SUCCEEDED,
        "c": RunState.SKIPPED,
        "d": RunState.SKIPPED,
    }
    assert result.state is RunState.FAILED


async def test_continue_runs_every_branch_that_does_not_depend_on_the_failure() -> None:
    executor = ScriptedExecutor({"a": FAIL})
    plan = make_plan(
        step("a"),
        step("b", depends_on=["a"]),
        step("c"),
        step("d", depends_on=["c"]),
        step("e", depends_on=["b", "d"]),
        mode=ExecutionMode.DEPENDENCY_GRAPH,
        on_failure=FailurePolicy.CONTINUE,
    )
    result = await run(plan, executor)

    assert sorted(executor.order) == ["a", "c", "d"]
    assert states(result) == {
        "a": RunState.FAILED,
        "b": RunState.SKIPPED,
        "c": RunState.SUCCEEDED,
        "d": RunState.SUCCEEDED,
        "e": RunState.SKIPPED,
    }
    assert result.command("e").skipped_reason == "dependency `b` was skipped"
    assert result.state is RunState.FAILED


async def test_continue_in_sequential_mode_runs_the_commands_after_a_failure() -> None:
    executor = ScriptedExecutor({"a": FAIL})
    result = await run(make_plan(step("a"), step("b"), on_failure=FailurePolicy.CONTINUE), executor)

    assert executor.order == ["a", "b"]
    assert states(result) == {"a": RunState.FAILED, "b": RunState.SUCCEEDED}
    assert result.state is RunState.FAILED


async def test_rollback_undoes_succeeded_commands_in_reverse_completion_order() -> None:
    executor = ScriptedExecutor(
        {
            "a": Script(sleep=0.05),
            "b": Script(sleep=0.01),
            "c": Script(sleep=0.1),
            "d": Script(sleep=0.15, ok=False, error_code="Boom"),
        }
    )
    sink = ListSink()
    plan = make_plan(
        step("a", rollback=1),
        step("b", rollback=2),
        step("c", rollback=1),
        step("d", rollback=1),
        mode=ExecutionMode.PARALLEL,
        on_failure=FailurePolicy.ROLLBACK,
    )
    result = await run(plan, executor, sink=sink)

    assert executor.order[4:] == ["c.rollback.1", "a.rollback.1", "b.rollback.1", "b.rollback.2"]
    assert result.rolled_back == ["c", "a", "b"]
    assert result.not_rolled_back == []
    assert states(result) == {
        "a": RunState.ROLLED_BACK,
        "b": RunState.ROLLED_BACK,
        "c": RunState.ROLLED_BACK,
        "d": RunState.FAILED,
    }
    assert [(r.command_id, r.step, r.state) for r in result.command("b").rollback] == [
        ("b.rollback.1", 1, RunState.SUCCEEDED),
        ("b.rollback.2", 2, RunState.SUCCEEDED),
    ]
    assert result.command("d").rollback == []
    assert result.state is RunState.ROLLED_BACK
    events = state_events(sink)
    assert events.index(("c.rollback.1", RunState.RUNNING)) < events.index(("c.rollback.1", RunState.SUCCEEDED))
    assert ("c", RunState.ROLLED_BACK) in events


async def test_a_failing_rollback_step_stops_that_rollback_but_the_others_still_run() -> None:
    executor = ScriptedExecutor({"a.rollback.1": FAIL, "d": FAIL})
    plan = make_plan(
        step("a", rollback=2),
        step("b", rollback=1),
        step("c"),
        step("d"),
        step("e", rollback=1),
        on_failure=FailurePolicy.ROLLBACK,
    )
    result = await run(plan, executor)

    assert executor.order == ["a", "b", "c", "d", "b.rollback.1", "a.rollback.1"]
    assert result.rolled_back == ["b"]
    assert result.not_rolled_back == ["c", "a"]
    assert states(result) == {
        "a": RunState.SUCCEEDED,
        "b": RunState.ROLLED_BACK,
        "c": RunState.SUCCEEDED,
        "d": RunState.FAILED,
        "e": RunState.SKIPPED,
    }
    assert [(r.step, r.state) for r in result.command("a").rollback] == [(1, RunState.FAILED)]
    assert result.state is RunState.FAILED


async def test_rollback_with_nothing_succeeded_reports_the_failure() -> None:
    executor = ScriptedExecutor({"a": FAIL})
    result = await run(make_plan(step("a", rollback=1), step("b"), on_failure=FailurePolicy.ROLLBACK), executor)

    assert executor.order == ["a"]
    assert result.state is RunState.FAILED
    assert result.rolled_back == [] and result.not_rolled_back == []


# Cancellation


async def test_cancel_stops_running_commands_and_skips_the_rest_promptly() -> None:
    executor = ScriptedExecutor({"a": Script(sleep=0.01), "b": Script(hang=True), "c": Script(hang=True)})
    plan = make_plan(
        step("a", rollback=1),
        step("b"),
        step("c"),
        step("d", depends_on=["b"]),
        step("e"),
        mode=ExecutionMode.DEPENDENCY_GRAPH,
        on_failure=FailurePolicy.ROLLBACK,
    )
    cancellation = Cancellation()
    sink = ListSink()
    execution = asyncio.create_task(run(plan, executor, max_parallel=2, sink=sink, cancellation=cancellation))
    await asyncio.sleep(0.1)
    cancelled_at = time.monotonic()
    cancellation.cancel("alice")
    result = await execution

    assert time.monotonic() - cancelled_at < 0.2
    assert states(result) == {
        "a": RunState.SUCCEEDED,
        "b": RunState.CANCELLED,
        "c": RunState.CANCELLED,
        "d": RunState.SKIPPED,
        "e": RunState.SKIPPED,
    }
    assert executor.call("b").cancelled and executor.call("c").cancelled
    assert result.command("d").skipped_reason == "cancelled by alice"
    assert result.command("b").finished_at is not None and result.command("b").duration_seconds is not None
    assert result.state is RunState.CANCELLED
    assert result.cancelled_by == "alice"
    assert not executor.ran("a.rollback.1")  # no rollback after a cancel
    assert ("b", RunState.CANCELLED) in state_events(sink)


async def test_a_cancel_before_the_run_starts_runs_nothing() -> None:
    executor = ScriptedExecutor()
    cancellation = Cancellation()
    cancellation.cancel("bob")
    cancellation.cancel("carol")
    result = await run(make_plan(step("a"), step("b")), executor, cancellation=cancellation)

    assert executor.calls == []
    assert states(result) == {"a": RunState.SKIPPED, "b": RunState.SKIPPED}
    assert result.state is RunState.CANCELLED and result.cancelled_by == "bob"


async def test_cancel_during_rollback_stops_it_and_reports_what_was_not_undone() -> None:
    executor = ScriptedExecutor({"b.rollback.1": Script(hang=True), "c": FAIL})
    cancellation = Cancellation()
    plan = make_plan(step("a", rollback=1), step("b", rollback=1), step("c"), on_failure=FailurePolicy.ROLLBACK)
    execution = asyncio.create_task(run(plan, executor, cancellation=cancellation))
    while not executor.ran("b.rollback.1"):
        await asyncio.sleep(0.005)
    cancellation.cancel("alice")
    result = await execution

    assert executor.call("b.rollback.1").cancelled
    assert not executor.ran("a.rollback.1")
    assert result.not_rolled_back == ["b", "a"]
    assert [(r.step, r.state) for r in result.command("b").rollback] == [(1, RunState.CANCELLED)]
    assert result.state is RunState.CANCELLED and result.cancelled_by == "alice"


async def test_a_cancel_landing_as_a_rollback_step_ends_runs_no_further_step() -> None:
    executor = ScriptedExecutor({"b": FAIL})
    cancellation = Cancellation()

    async def cancel_during_first_step(
        command: ResolvedCommand, context: ExecutionContext, sink: OutputSink
    ) -> CommandResult:
        result = await executor(command, context, sink)
        if command.id == "a.rollback.1":
            cancellation.cancel("alice")
        return result

    plan = make_plan(step("a", rollback=2), step("b"), on_failure=FailurePolicy.ROLLBACK)
    result = await Orchestrator(cancel_during_first_step).execute(
        plan, ExecutionContext(), ListSink(), cancellation=cancellation
    )

    assert executor.order == ["a", "b", "a.rollback.1"]
    assert [(r.step, r.state) for r in result.command("a").rollback] == [(1, RunState.SUCCEEDED)]
    assert result.command("a").state is RunState.SUCCEEDED
    assert result.not_rolled_back == ["a"]
    assert result.state is RunState.CANCELLED and result.cancelled_by == "alice"


async def test_cancelling_the_execute_task_cancels_its_commands_and_leaves_no_tasks() -> None:
    executor = ScriptedExecutor({"a": Script(hang=True), "b": Script(hang=True)})
    plan = make_plan(step("a"), step("b"), mode=ExecutionMode.PARALLEL)
    execution = asyncio.create_task(run(plan, executor))
    while len(executor.calls) < 2:
        await asyncio.sleep(0.005)
    execution.cancel()
    with pytest.raises(asyncio.CancelledError):
        await execution

    assert executor.call("a").cancelled and executor.call("b").cancelled
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancelling_the_execute_task_during_rollback_leaves_no_tasks() -> None:
    executor = ScriptedExecutor({"a.rollback.1": Script(hang=True), "b": FAIL})
    plan = make_plan(step("a", rollback=1), step("b"), on_failure=FailurePolicy.ROLLBACK)
    execution = asyncio.create_task(run(plan, executor))
    while not executor.ran("a.rollback.1"):
        await asyncio.sleep(0.005)
    execution.cancel()
    with pytest.raises(asyncio.CancelledError):
        await execution

    assert executor.call("a.rollback.1").cancelled
    assert asyncio.all_tasks() == {asyncio.current_task()}


# Dry run


def test_dry_run_variant_adds_dryrun_to_the_api_request_and_the_command_line() -> None:
    sdk = resolved(
        "a", service="ec2", operation="StopInstances", params={"InstanceIds": ["i-1"]}, supports_dry_run=True
    )
    cli = resolved(
        "b",
        form="cli",
        service="ec2",
        operation="StopInstances",
        params={"InstanceIds": ["i-1"]},
        cli_args=["ec2", "stop-instances", "--instance-ids", "i-1", "--no-dry-run"],
        supports_dry_run=True,
    )

    sdk_variant = dry_run_variant(sdk)
    cli_variant = dry_run_variant(cli)

    assert sdk_variant is not None and sdk_variant.params == {"InstanceIds": ["i-1"], "DryRun": True}
    assert sdk_variant.cli_args is None
    assert cli_variant is not None and cli_variant.params == {"InstanceIds": ["i-1"], "DryRun": True}
    assert cli_variant.cli_args == ["ec2", "stop-instances", "--instance-ids", "i-1", "--dry-run"]
    assert sdk.params == {"InstanceIds": ["i-1"]}  # the original is left as it was


@pytest.mark.parametrize("word", ["cp", "mv", "rm", "sync"])
def test_dry_run_variant_adds_dryrun_to_s3_transfer_commands(word: str) -> None:
    command = resolved(
        "a", form="cli", operation=None, cli_operation=word, cli_args=["s3", word, "s3://b/k"], high_level=True
    )

    variant = dry_run_variant(command)

    assert variant is not None and variant.cli_args == ["s3", word, "s3://b/k", "--dryrun"]


@pytest.mark.parametrize(
    "command",
    [
        resolved("a", operation="CreateBucket", params={"Bucket": "b"}),
        resolved("a", form="cli", operation=None, cli_operation="ls", cli_args=["s3", "ls"], high_level=True),
        resolved("a", form="cli", operation=None, cli_operation="mb", cli_args=["s3", "mb", "s3://b"], high_level=True),
    ],
    ids=["api-without-dryrun", "s3-ls", "s3-mb"],
)
def test_dry_run_variant_is_none_for_commands_without_a_dry_run_mode(command: ResolvedCommand) -> None:
    assert dry_run_variant(command) is None


async def test_dry_run_runs_variants_and_skips_the_rest_saying_so_plainly() -> None:
    executor = ScriptedExecutor({"fails": Script(ok=False, error_code="UnauthorizedOperation")})
    sink = ListSink()
    plan = make_plan(
        step("bucket", operation="CreateBucket", rollback=1),
        step("stop", service="ec2", operation="StopInstances", supports_dry_run=True, depends_on=["bucket"]),
        step(
            "copy",
            form="cli",
            operation=None,
            cli_operation="cp",
            cli_args=["s3", "cp", "a", "s3://b/a"],
            high_level=True,
        ),
        step("fails", service="ec2", operation="TerminateInstances", supports_dry_run=True),
        step("after", service="ec2", operation="StartInstances", supports_dry_run=True),
        on_failure=FailurePolicy.ROLLBACK,
    )
    result = await run(plan, executor, dry_run=True, sink=sink)

    assert executor.order == ["stop", "copy", "fails"]
    assert executor.call("stop").command.params == {"DryRun": True}
    assert executor.call("stop").context.dry_run
    assert executor.call("copy").command.cli_args == ["s3", "cp", "a", "s3://b/a", "--dryrun"]
    assert result.command("bucket").state is RunState.SKIPPED
    assert result.command("bucket").skipped_reason == DRY_RUN_NOT_RUN_REASON
    assert DRY_RUN_NOT_RUN_REASON == "dry run: validated, not run (this operation has no dry-run mode)"
    skipped = [e for e in sink.events if isinstance(e, CommandStateChanged) and e.command_id == "bucket"]
    assert [(e.state, e.reason) for e in skipped] == [(RunState.SKIPPED, DRY_RUN_NOT_RUN_REASON)]
    assert result.command("stop").result is not None and result.command("stop").result.dry_run
    assert result.command("after").state is RunState.SKIPPED  # stopped after `fails`, and nothing rolled back
    assert not any(".rollback." in command_id for command_id in executor.order)
    assert result.dry_run
    assert result.state is RunState.FAILED


async def test_a_dry_run_of_dry_runnable_commands_succeeds() -> None:
    executor = ScriptedExecutor()
    plan = make_plan(step("a", service="ec2", operation="RunInstances", supports_dry_run=True, params={"MinCount": 1}))
    result = await run(plan, executor, dry_run=True)

    assert executor.call("a").command.params == {"MinCount": 1, "DryRun": True}
    assert result.state is RunState.SUCCEEDED and result.dry_run


# Redaction, robustness, events and timings


async def test_a_secret_printed_by_a_command_never_reaches_the_sink_or_the_result() -> None:
    printed = f'"SecretAccessKey": "{SECRET}",'
    executor = ScriptedExecutor(
        {
            "creds": Script(
                sleep=0.02,
                lines=["{", '  "Credentials": {', f"    {printed}", "  }", "}"],
                data={"Credentials": {"SecretAccessKey": SECRET}},
            ),
            "fails": Script(
                ok=False, error_code="Boom", error_message=f"bad key {printed}", lines=[("stderr", printed)]
            ),
        }
    )
    sink = ListSink()
    plan = make_plan(step("creds"), step("fails"), on_failure=FailurePolicy.CONTINUE)
    result = await run(plan, executor, sink=sink)

    assert any(isinstance(e, OutputLine) and "SecretAccessKey" in e.line for e in sink.events)
    for event in sink.events:
        assert SECRET not in event.model_dump_json()
    assert SECRET not in result.model_dump_json()
    assert result.command("creds").result is not None and "SecretAccessKey" in result.command("creds").result.output


async def test_a_bare_secret_printed_by_a_query_the_aws_cli_applies_and_a_password_in_a_display_are_redacted() -> None:
    bare = "correct-horse-battery-staple-42"
    password = "Sup3rS3cretPassw0rd"
    # A reviewed customization: not one API operation, so the aws CLI applies its --query.
    query = resolved(
        "get",
        form="cli",
        service="emr",
        operation=None,
        cli_operation="describe-cluster",
        high_level=True,
        cli_args=[
            "emr",
            "describe-cluster",
            "--cluster-id",
            "j-1",
            "--query",
            "Cluster.Configurations[0].Properties.password",
        ],
    )
    create = resolved("create", form="cli", service="rds", operation="CreateDBInstance", cli_args=["rds"])
    create = create.model_copy(update={"display": f"aws rds create-db-instance --master-user-password {password}"})
    plan = make_plan(
        ValidatedCommand(id="get", command=query),
        ValidatedCommand(id="create", command=create),
    )
    executor = ScriptedExecutor({"get": Script(lines=[bare], data=bare)})
    sink = ListSink()
    result = await run(plan, executor, sink=sink)

    assert sink.lines("get") == ["[REDACTED]"]
    dumped = [e.model_dump_json() for e in sink.events] + [result.model_dump_json()]
    assert not any(bare in text or password in text for text in dumped)
    assert result.command("get").result is not None and result.command("get").result.output == "[REDACTED]"
    assert result.command("create").display == "aws rds create-db-instance --master-user-password [REDACTED]"


async def test_an_api_operations_queried_output_is_left_to_the_executors_and_not_blanked() -> None:
    # The executors redact an API operation's response by shape and key before they apply its --query, so
    # what they print is already safe; blanking it as a bare secret would only make it unreadable.
    get = resolved(
        "get",
        form="cli",
        service="ssm",
        operation="GetParameter",
        cli_operation="get-parameter",
        cli_args=["ssm", "get-parameter", "--name", "/db", "--with-decryption", "--query", "Parameter.[Name,Value]"],
    )
    lines = ["[", '    "/db",', '    "[REDACTED]"', "]"]
    executor = ScriptedExecutor({"get": Script(lines=lines, data=["/db", "[REDACTED]"])})
    sink = ListSink()
    result = await run(make_plan(ValidatedCommand(id="get", command=get)), executor, sink=sink)

    assert sink.lines("get") == lines
    assert result.command("get").result is not None and result.command("get").result.data == ["/db", "[REDACTED]"]


async def test_run_command_raising_fails_that_command_with_internal_error_and_the_plan_goes_on() -> None:
    executor = ScriptedExecutor({"a": Script(raises=RuntimeError("executor exploded"))})
    plan = make_plan(step("a"), step("b"), on_failure=FailurePolicy.CONTINUE)
    result = await run(plan, executor)

    outcome = result.command("a")
    assert outcome.state is RunState.FAILED
    assert outcome.result is not None and outcome.result.error_code == "InternalError"
    assert outcome.result.error_message == "RuntimeError: executor exploded"
    assert result.command("b").state is RunState.SUCCEEDED
    assert result.state is RunState.FAILED


async def test_run_command_returning_something_else_fails_that_command_with_internal_error() -> None:
    async def broken(command: ResolvedCommand, context: ExecutionContext, sink: object) -> object:
        return {"ok": True}

    result = await Orchestrator(broken).execute(make_plan(step("a")), ExecutionContext(), ListSink())  # type: ignore[arg-type]

    outcome = result.command("a")
    assert outcome.state is RunState.FAILED
    assert outcome.result is not None and outcome.result.error_code == "InternalError"
    assert outcome.result.error_message == "TypeError: run_command returned dict, not a CommandResult"


async def test_a_failing_sink_loses_its_events_but_not_the_run(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenSink(ListSink):
        async def emit(self, event: Event) -> None:
            if isinstance(event, CommandStateChanged | PlanStateChanged):
                raise OSError("chat API down")
            await super().emit(event)

    executor = ScriptedExecutor({"b": Script(lines=["still streamed"])})
    sink = BrokenSink()
    plan = make_plan(step("a"), step("b"), step("c"), mode=ExecutionMode.PARALLEL)
    result = await run(plan, executor, sink=sink)

    assert states(result) == {"a": RunState.SUCCEEDED, "b": RunState.SUCCEEDED, "c": RunState.SUCCEEDED}
    assert result.state is RunState.SUCCEEDED
    assert sink.lines("b") == ["still streamed"]
    assert [r.message for r in caplog.records].count(
        "output sink failed; the events it cannot take are dropped: OSError"
    ) == 1
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_events_announce_the_plan_and_each_command_start_and_end_in_order() -> None:
    executor = ScriptedExecutor({"b": FAIL})
    sink = ListSink()
    plan = make_plan(step("a"), step("b"), step("c"), on_failure=FailurePolicy.CONTINUE)
    result = await run(plan, executor, sink=sink)

    first, last = sink.events[0], sink.events[-1]
    assert isinstance(first, PlanStateChanged) and first.state is RunState.RUNNING and first.result is None
    assert isinstance(last, PlanStateChanged) and last.state is RunState.FAILED and last.result == result
    assert state_events(sink) == [
        ("a", RunState.RUNNING),
        ("a", RunState.SUCCEEDED),
        ("b", RunState.RUNNING),
        ("b", RunState.FAILED),
        ("c", RunState.RUNNING),
        ("c", RunState.SUCCEEDED),
    ]
    ends = [e for e in sink.events if isinstance(e, CommandStateChanged) and e.state is not RunState.RUNNING]
    assert all(e.result is not None for e in ends)
    assert all(e.display == plan.command(e.command_id).command.display for e in ends)


async def test_commands_and_plan_record_their_timings() -> None:
    executor = ScriptedExecutor({"a": Script(sleep=0.05), "b": FAIL})
    result = await run(make_plan(step("a"), step("b"), step("c")), executor)

    a = result.command("a")
    assert a.started_at is not None and a.finished_at is not None and a.started_at < a.finished_at
    assert a.duration_seconds is not None and 0.05 <= a.duration_seconds < 0.5
    assert result.command("b").duration_seconds is not None
    skipped = result.command("c")
    assert skipped.started_at is None and skipped.finished_at is not None and skipped.duration_seconds is None
    assert result.started_at <= a.started_at and a.finished_at <= result.finished_at
    assert result.duration_seconds >= 0.05
    assert result.plan_hash == make_plan(step("a"), step("b"), step("c")).hash


async def test_the_sleep_executor_sleeps_its_time_and_succeeds() -> None:
    executor = SleepExecutor({"a": 0.03})
    start = time.monotonic()
    result = await Orchestrator(executor).execute(make_plan(step("a")), ExecutionContext(), ListSink())

    assert time.monotonic() - start >= 0.03
    assert result.state is RunState.SUCCEEDED


def test_max_parallel_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_parallel"):
        Orchestrator(ScriptedExecutor(), max_parallel=0)
