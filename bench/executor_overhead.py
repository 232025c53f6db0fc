"""Executor overhead against a moto server, all measured in one run.

- SDK executor vs calling boto3 directly: 200 read calls each (target ratio <= 1.10)
- CLI executor vs spawning `aws` directly: the same command line (target ratio <= 1.05)
- SDK executor vs CLI executor on the same command

Runs are interleaved (A, B, A, B, ...) so that machine noise hits both sides alike; medians are compared.
Run from the repository root: python -m bench.executor_overhead [--sdk-calls 200] [--cli-runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import boto3
from botocore.config import Config

from engine.commands import ResolvedCommand
from engine.executors.base import ExecutionContext
from engine.executors.cli import CliExecutor
from engine.executors.sdk import SdkExecutor
from engine.risk import Risk
from engine.sinks import NullSink
from tests.aws_env import aws_environment, moto_server

COMMAND = ResolvedCommand(
    id="vpcs",
    form="cli",
    service="ec2",
    cli_service="ec2",
    operation="DescribeVpcs",
    cli_operation="describe-vpcs",
    cli_args=["ec2", "describe-vpcs"],
    params={},
    risk=Risk.READ_ONLY,
    display="aws ec2 describe-vpcs",
)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}"


async def bench_sdk(url: str, calls: int) -> tuple[list[float], list[float]]:
    context = ExecutionContext(region="us-east-1", endpoint_url=url)
    executor = SdkExecutor()
    sink = NullSink()
    client = boto3.session.Session().client(
        "ec2", region_name="us-east-1", endpoint_url=url, config=Config(retries={"total_max_attempts": 1})
    )
    # Warm both: client creation and the first connection are not what is being compared.
    client.describe_vpcs()
    await executor.run(COMMAND, context, sink)
    direct: list[float] = []
    ours: list[float] = []
    for _ in range(calls):
        start = time.perf_counter()
        await asyncio.to_thread(client.describe_vpcs)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = await executor.run(COMMAND, context, sink)
        ours.append(time.perf_counter() - start)
        assert result.ok, result.error_message
    return direct, ours


async def spawn_aws_directly(env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        "aws",
        *COMMAND.cli_args,
        "--output",
        "json",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and out


async def bench_cli(url: str, runs: int) -> tuple[list[float], list[float]]:
    context = ExecutionContext(region="us-east-1", endpoint_url=url)
    executor = CliExecutor()
    sink = NullSink()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "AWS_PAGER": ""}
    env.update(aws_environment(url))
    await spawn_aws_directly(env)
    await executor.run(COMMAND, context, sink)
    direct: list[float] = []
    ours: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        await spawn_aws_directly(env)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = await executor.run(COMMAND, context, sink)
        ours.append(time.perf_counter() - start)
        assert result.ok, result.error_message
    return direct, ours


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sdk-calls", type=int, default=200)
    parser.add_argument("--cli-runs", type=int, default=15)
    args = parser.parse_args()
    with moto_server() as url:
        os.environ.update(aws_environment(url))
        sdk_direct, sdk_ours = await bench_sdk(url, args.sdk_calls)
        cli_direct, cli_ours = await bench_cli(url, args.cli_runs)
    med = statistics.median
    rows = [
        ("boto3 directly (per call)", med(sdk_direct), "", ""),
        ("SDK executor (per call)", med(sdk_ours), _ratio(med(sdk_ours), med(sdk_direct)), "<= 1.10"),
        ("`aws` spawned directly (per run)", med(cli_direct), "", ""),
        ("CLI executor (per run)", med(cli_ours), _ratio(med(cli_ours), med(cli_direct)), "<= 1.05"),
        ("SDK executor vs CLI executor", med(sdk_ours), _ratio(med(sdk_ours), med(cli_ours)), "(for scale)"),
    ]
    print(f"sdk calls: {args.sdk_calls} each side; cli runs: {args.cli_runs} each side; medians\n")
    print("| measured | median ms | ratio | target |")
    print("|---|---|---|---|")
    for name, value, ratio, target in rows:
        print(f"| {name} | {value * 1000:.1f} | {ratio} | {target} |")
    print(
        f"\nSDK totals: boto3 {sum(sdk_direct):.2f}s, executor {sum(sdk_ours):.2f}s "
        f"(ratio {sum(sdk_ours) / sum(sdk_direct):.3f})"
    )


if __name__ == "__main__":
    asyncio.run(main())
