"""Start-up time of the ``cloudops`` command line against ``aws --version``: whole processes, in one run.

Measured over N trials, interleaved (each trial runs every command once, starting one further along the list
each time, so none always runs first or right after another):

- ``aws --version``: the baseline (Python start-up, the aws CLI's imports, its driver and command table)
- ``cloudops --help``: target at most 1.5 times the baseline
- ``cloudops validate`` on a 3-command plan: target at most 1.5 times the baseline, median and p90
- ``python -c pass``: for scale, the interpreter alone

Every process gets a clean environment: PATH, a temporary HOME and CLOUDOPS_DATA_DIR, and no AWS settings,
endpoint or credentials (validation must need none), in a temporary working directory (so no ``.env`` is
read). The executables are the ones installed next to this Python (``aws`` and ``cloudops`` console
scripts), not shims found on PATH, which would add the same constant to both sides.

Then, in fresh processes (median of a few), where ``cloudops validate``'s time goes, phase by phase, and
what ``aws --version`` spends on the same kind of work, to show what remains beyond imports.

Run from the repository root: python -m bench.validate_startup [--trials 15] [--breakdown-runs 5]
    [--checkout DIR]  (measure ``python -m bot.cli`` from another source tree, e.g. an older commit's)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PLAN = Path(__file__).resolve().parent.parent / "examples" / "s3-reports-bucket.yaml"
# Used when the example no longer has three commands, so the measured plan stays the same size.
FALLBACK_PLAN = """\
summary: Create the reports bucket, tag it, list buckets
mode: dependency_graph
on_failure: rollback
commands:
  - id: bucket
    cli: aws s3api create-bucket --bucket reports-2026
    rollback: aws s3api delete-bucket --bucket reports-2026
  - id: tag
    cli: aws s3api put-bucket-tagging --bucket reports-2026 --tagging 'TagSet=[{Key=team,Value=ops}]'
    depends_on: [bucket]
  - id: list
    sdk: {service: s3, operation: ListBuckets, params: {}}
"""
TARGET = 1.5

# Run in a fresh process: the phases of `cloudops validate`, in the order the command meets them, each
# timed from the end of the one before. The first command of the plan is read alone first, so that the
# aws CLI's first-use costs (a service's parser, its botocore model) show apart from the warm cost.
VALIDATE_PHASES = r"""
import gc, json, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
gc.disable()  # as bot.cli.main does for the whole command
import bot.cli
bot.cli.build_parser()
mark("command line: bot.cli and its parsers")
import bot.terminal, engine.commands, engine.config, engine.plan, engine.policy
mark("CloudOps's plan, policy and settings models (pydantic, yaml)")
import engine.awscli_model, engine.validate
mark("aws CLI and botocore imports (engine.awscli_model)")
from bot.cli_plans import load_settings, read_plan_text
settings = load_settings()
policy = engine.policy.load_policy(settings.policy_path)
text = read_plan_text(sys.argv[1])
mark("settings, policy, plan file")
tables = getattr(engine.awscli_model, "_cli_tables", None)
if tables is not None:
    tables()
    mark("aws CLI driver and tables (awscli_model._cli_tables())")
engine.validate.validate_plan(engine.plan.parse_plan(sys.argv[2]), policy)
mark("first command alone, with its rollback (first use of s3api)")
validated = engine.validate.validate_plan(engine.plan.parse_plan(text), policy)
mark("the whole 3-command plan, tables warm")
bot.terminal.render_plan(validated)
mark("rendering the plan")
gc.freeze()  # as bot.cli.main does at the end, so that the exit does not walk what start-up built
gc.enable()
print(json.dumps([(name, end - start) for (name, end), (_, start) in zip(marks[1:], marks)]))
"""

# The same for `aws --version`: what the baseline spends on imports and on building its driver.
AWS_PHASES = r"""
import contextlib, io, json, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
import awscli.clidriver
mark("aws CLI and botocore imports (awscli.clidriver)")
driver = awscli.clidriver.create_clidriver()
mark("create_clidriver (session, plugins)")
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    driver.main(["--version"])
mark("driver.main(['--version']): command table, parser, version")
print(json.dumps([(name, end - start) for (name, end), (_, start) in zip(marks[1:], marks)]))
"""


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Measured:
    name: str
    argv: list[str]
    target: float | None = None
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90)


def installed(script: str) -> str:
    """The console script installed with this Python; PATH only when there is none."""
    beside = Path(sys.executable).parent / script
    if beside.exists():
        return str(beside)
    found = shutil.which(script)
    if found is None:
        sys.exit(f"no `{script}` found next to {sys.executable} or on PATH")
    return found


def plan_file(workdir: Path) -> tuple[Path, str]:
    """The measured 3-command plan, and a plan of its first command alone (JSON text)."""
    data = yaml.safe_load(PLAN.read_text(encoding="utf-8"))
    path = PLAN
    if len(data.get("commands", [])) != 3:
        path = workdir / "three-commands.yaml"
        path.write_text(FALLBACK_PLAN, encoding="utf-8")
        data = yaml.safe_load(FALLBACK_PLAN)
    first = dict(data["commands"][0])
    first.pop("depends_on", None)
    return path, json.dumps({"summary": data["summary"], "commands": [first]})


def clean_environment(home: Path, data_dir: Path, checkout: Path | None) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CLOUDOPS_DATA_DIR": str(data_dir), "LANG": "C.UTF-8"}
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def phases(
    code: str, args: list[str], env: dict[str, str], cwd: Path, runs: int
) -> tuple[list[tuple[str, float]], float]:
    """Median seconds per phase over fresh processes, and the median whole-process wall time."""
    per_phase: dict[str, list[float]] = {}
    walls: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
        )
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"phase breakdown failed: {done.stderr[-2000:]}")
        for name, seconds in json.loads(done.stdout.splitlines()[-1]):
            per_phase.setdefault(name, []).append(seconds)
    return [(name, statistics.median(values)) for name, values in per_phase.items()], statistics.median(walls)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def print_phases(title: str, rows: list[tuple[str, float]], wall: float) -> None:
    inside = sum(seconds for _, seconds in rows)
    print(f"\n{title}: whole process {ms(wall)} ms (median)\n")
    print("| phase | median ms |")
    print("|---|---|")
    print(f"| interpreter start-up and exit (whole process minus the phases) | {ms(wall - inside)} |")
    for name, seconds in rows:
        print(f"| {name} | {ms(seconds)} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15, help="runs of each command, interleaved")
    parser.add_argument("--breakdown-runs", type=int, default=5, help="fresh processes per phase breakdown")
    parser.add_argument("--checkout", type=Path, help="run `python -m bot.cli` from this source tree instead")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cloudops-startup-") as tmp:
        root = Path(tmp)
        for name in ("home", "data", "work"):
            (root / name).mkdir()
        workdir = root / "work"
        env = clean_environment(root / "home", root / "data", args.checkout)
        plan, first_command = plan_file(workdir)
        cloudops = [sys.executable, "-m", "bot.cli"] if args.checkout else [installed("cloudops")]
        measured = [
            Measured("`aws --version`", [installed("aws"), "--version"]),
            Measured("`cloudops --help`", [*cloudops, "--help"], target=TARGET),
            Measured("`cloudops validate` (3 commands)", [*cloudops, "validate", str(plan)], target=TARGET),
            Measured("`python -c pass`", [sys.executable, "-c", "pass"]),
        ]
        print(f"aws: {measured[0].argv[0]}")
        print(f"cloudops: {' '.join(cloudops)}" + (f" (PYTHONPATH={args.checkout})" if args.checkout else ""))
        print(f"plan: {plan} (3 commands)")
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPU(s), "
            f"load average at start {', '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
        # One untimed round: the first run of each pays for cold file caches, not for its own start-up.
        for item in measured:
            run(item.argv, env, workdir)
        for trial in range(args.trials):
            shift = trial % len(measured)
            for item in measured[shift:] + measured[:shift]:
                item.samples.append(run(item.argv, env, workdir))

        baseline = measured[0]
        print(f"\n{args.trials} trials each, interleaved; load average after {os.getloadavg()[0]:.2f}\n")
        print("| command | median ms | p90 ms | median / aws | p90 / aws | target |")
        print("|---|---|---|---|---|---|")
        for item in measured:
            ratios = f"{item.median / baseline.median:.2f} | {item.p90 / baseline.p90:.2f}"
            if item is baseline:
                ratios = " | "
            target = ""
            if item.target is not None:
                met = item.median <= item.target * baseline.median and item.p90 <= item.target * baseline.p90
                target = f"<= {item.target}: {'met' if met else 'missed'}"
            print(f"| {item.name} | {ms(item.median)} | {ms(item.p90)} | {ratios} | {target} |")

        phase_env = dict(env)
        phase_env["PYTHONPATH"] = str(args.checkout or Path(__file__).resolve().parent.parent)
        ours, ours_wall = phases(VALIDATE_PHASES, [str(plan), first_command], phase_env, workdir, args.breakdown_runs)
        print_phases("`cloudops validate`, in-process phases", ours, ours_wall)
        theirs, theirs_wall = phases(AWS_PHASES, [], env, workdir, args.breakdown_runs)
        print_phases("`aws --version`, in-process phases", theirs, theirs_wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
