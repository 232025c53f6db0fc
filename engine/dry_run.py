"""Dry-run variants of commands: ask AWS to check a request without carrying it out.

Only two kinds of command have a safe dry-run form: API operations whose input has a ``DryRun`` member
(mostly EC2), and the aws CLI's high-level s3 transfer commands, which take ``--dryrun``. Everything else
has no way to be checked without running it, so a dry run validates it and does not run it at all.
"""

from __future__ import annotations

from engine.commands import ResolvedCommand

DRY_RUN_NOT_RUN_REASON = "dry run: validated, not run (this operation has no dry-run mode)"

# The aws CLI's high-level s3 commands that take --dryrun; `ls`, `mb`, `rb`, `presign`, `website` do not.
_S3_DRYRUN_COMMANDS = frozenset({"cp", "mv", "rm", "sync"})


def dry_run_variant(command: ResolvedCommand) -> ResolvedCommand | None:
    """The same command asking AWS only to check it, or None when it has no dry-run form and must not run."""
    if command.supports_dry_run and command.operation is not None:
        if command.params is None and command.cli_args is None:
            return None
        update: dict[str, object] = {}
        if command.params is not None:
            update["params"] = {**command.params, "DryRun": True}
        if command.cli_args is not None:
            update["cli_args"] = _with_flag(command.cli_args, "--dry-run", "--no-dry-run")
        return command.model_copy(update=update)
    if (
        command.high_level
        and command.service == "s3"
        and command.cli_operation in _S3_DRYRUN_COMMANDS
        and command.cli_args is not None
    ):
        return command.model_copy(update={"cli_args": _with_flag(command.cli_args, "--dryrun")})
    return None


def _with_flag(args: list[str], flag: str, *opposites: str) -> list[str]:
    # A plan that already says `--no-dry-run` must not win over the operator's dry run: the aws CLI
    # takes the last of two contradicting flags, so drop the opposite and append ours.
    kept = [arg for arg in args if arg not in opposites and arg != flag]
    return [*kept, flag]
