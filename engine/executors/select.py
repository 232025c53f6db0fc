"""Which executor runs a command, from the operator's setting and what the command can be run as.

The choice is configuration (``CLOUDOPS_EXECUTOR``), never the plan's: the plan says what to run, and the
engine decides how, as it decides the profile, region and endpoint. A plan cannot ask for the executor
with the broader reach (a subprocess) or route around a setting the operator made.
"""

from __future__ import annotations

from engine.commands import ResolvedCommand
from engine.config import ExecutorChoice
from engine.executors.base import Executor
from engine.executors.cli import CliExecutor
from engine.executors.sdk import SdkExecutor


class ExecutorSelector:
    """Maps each command to an executor.

    - ``auto``: the SDK for every command that maps to one API operation with its parameters (faster, no
      process start), the aws CLI for the rest (high-level ``s3`` commands, commands whose parameters
      could not be built).
    - ``sdk``: the SDK wherever it can run the command; CLI-only commands still run on the CLI, since
      refusing them would make a plan that copies files with ``aws s3 cp`` impossible under this setting.
    - ``cli``: the aws CLI for every CLI-form command; SDK-form commands have no command line and run on
      the SDK.
    """

    def __init__(self, choice: ExecutorChoice, cli: CliExecutor, sdk: SdkExecutor) -> None:
        self.choice = choice
        self.cli = cli
        self.sdk = sdk

    def for_command(self, command: ResolvedCommand) -> Executor:
        if command.form == "sdk" or not command.cli_args:
            return self.sdk
        if self.choice is ExecutorChoice.CLI:
            return self.cli
        return self.sdk if self.sdk.supports(command) else self.cli
