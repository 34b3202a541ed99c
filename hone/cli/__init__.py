"""The `hone` user commands: HTTP clients of a running API, built on the SDK.

`app/cli.py` hands them argv from the command name on (`["datasets", "upload", ...]`). Each
command module registers its own parsers; this one runs the chosen handler and turns every
expected failure into one line on stderr and an exit code: 0 success, 1 failure, 2 usage, 130
interrupted. No traceback reaches a user for a condition the SDK names.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import hone
from hone.cli import datasets, jobs, login, models, predict
from hone.cli.common import Context, Failure, UsageError, common_options, describe
from hone.cli.output import error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hone", description="Hone's user commands")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = common_options()
    for module in (login, datasets, jobs, models, predict):
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    ctx = Context(args)
    try:
        code: int = args.handler(args, ctx)
        return code
    except UsageError as exc:
        error(str(exc))
        return 2
    except (hone.HoneError, Failure, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            return _broken_pipe()
        error(describe(exc))
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130


def _broken_pipe() -> int:
    """The reader went away (`hone jobs list | head`): stop quietly, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush then goes nowhere
    return 1
