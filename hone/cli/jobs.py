"""`hone train` and `hone jobs list|show|watch|cancel|logs`."""

from __future__ import annotations

import argparse
from typing import Any

from rich.text import Text

from hone.cli import render
from hone.cli.common import Context, UsageError
from hone.cli.jobview import TERMINAL, event_line, plan_summary, summary
from hone.cli.output import plain
from hone.cli.watch import DETACHED, watch

STATUSES = ["queued", "running", "cancelling", *TERMINAL]
# `lp_ft` is how `full` trains (a linear probe, then every weight from its head): same method.
METHODS = {"auto": "auto", "linear_probe": "linear_probe", "full": "full", "lp_ft": "full"}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    train = sub.add_parser("train", parents=[common], help="start a fine-tuning job")
    train.add_argument(
        "--dataset",
        required=True,
        metavar="ID|NAME",
        help="the training dataset: its id, or its name (the newest dataset of that name)",
    )
    train.add_argument("--backbone", required=True, help="an id from GET /v1/backbones")
    train.add_argument("--model", required=True, metavar="NAME", help="the model to register")
    train.add_argument("--method", default="auto", choices=list(METHODS))
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument(
        "--hp", action="append", default=[], metavar="KEY=VALUE",
        help="another hyperparameter (repeatable), e.g. --hp patience=3",
    )  # fmt: skip
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--validation-dataset", default=None, metavar="ID|NAME")
    train.add_argument("--validation-split", type=float, default=None, metavar="FRACTION")
    train.add_argument("--dry-run", action="store_true", help="show the plan; start nothing")
    train.add_argument("--watch", action="store_true", help="follow the job live")
    train.set_defaults(handler=train_command)

    jobs = sub.add_parser("jobs", help="list, show, watch, cancel jobs and read their events")
    commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", parents=[common], help="jobs, newest first")
    listing.add_argument("--status", choices=STATUSES, default=None)
    listing.add_argument("--model", default=None, metavar="NAME")
    listing.add_argument("--limit", type=int, default=None)
    listing.set_defaults(handler=list_command)
    for name, handler, what in (
        ("show", show_command, "a job: status, progress, metrics, outcome"),
        ("watch", watch_command, "follow a job live (Ctrl-C detaches)"),
        ("cancel", cancel_command, "cancel a job"),
        ("logs", logs_command, "a job's events, oldest first"),
    ):
        command = commands.add_parser(name, parents=[common], help=what)
        command.add_argument("job_id", metavar="ID")
        command.set_defaults(handler=handler)
        if name == "logs":
            command.add_argument("--follow", "-f", action="store_true", help="stream new events")


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in args.hp:
        key, eq, raw = pair.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--hp {pair!r} is not KEY=VALUE")
        values[key.strip()] = parse_value(raw.strip())
    for key in ("epochs", "batch_size", "learning_rate"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return values


def parse_value(raw: str) -> Any:
    """'3' -> 3, '0.1' -> 0.1, 'true' -> True, anything else ('auto', 'cosine') as given."""
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def dataset_id(ctx: Context, given: str) -> str:
    """An id as given; a name as the id of the newest dataset of that name (lists are newest
    first), so `--name parts` at upload and `--dataset parts` here go together."""
    if given.startswith("ds_"):
        return given
    for dataset in ctx.client.datasets.list():
        if dataset.name == given:
            return str(dataset.id)
    raise UsageError(f"no dataset is named {given!r}: `hone datasets list` shows them")


def train_command(args: argparse.Namespace, ctx: Context) -> int:
    validation = args.validation_dataset
    body: dict[str, Any] = {
        "dataset_id": dataset_id(ctx, args.dataset),
        "backbone": args.backbone,
        "model_name": args.model,
        "method": METHODS[args.method],
        "hyperparameters": hyperparameters(args) or None,
        "validation_dataset_id": validation and dataset_id(ctx, validation),
        "validation_split": args.validation_split,
        "seed": args.seed,
    }
    out = ctx.out
    if args.dry_run:
        plan = plain(ctx.client.jobs.plan(**body))
        out.result(plan, plan_summary(plan))
        return 0
    job = plain(ctx.client.jobs.create(**body))
    if args.watch:
        if out.tty:
            out.show(Text(f"Started job {job['id']}", style="bold"))
        return watch(ctx, job["id"])
    if out.json_mode:
        out.json(job)
    elif out.tty:
        out.show(Text.assemble("Started job ", (job["id"], "bold"), f" ({job['status']})"))
        out.hint(
            f"Watch it: hone jobs watch {job['id']}   ·   cancel: hone jobs cancel {job['id']}"
        )
    else:
        out.show(Text(job["id"]))  # for scripts: JOB=$(hone train ...)
    return 0


def list_command(args: argparse.Namespace, ctx: Context) -> int:
    jobs = ctx.client.jobs.list(status=args.status, model_name=args.model, limit=args.limit)
    rows = [plain(j) for j in jobs]
    if ctx.out.json_mode:
        ctx.out.json(rows)
        return 0
    table = [
        (
            j["id"], j["status"], j.get("model_name"), j.get("backbone"),
            j.get("method_chosen") or j.get("method"), _progress(j),
            render.when(j.get("created_at")),
        )
        for j in rows
    ]  # fmt: skip
    columns = ["id", "status", "model", "backbone", "method", "progress", "created"]
    ctx.out.show(render.table(None, columns, table))
    return 0


def show_command(args: argparse.Namespace, ctx: Context) -> int:
    job = plain(ctx.client.jobs.get(args.job_id))
    ctx.out.result(job, summary(job))
    return 0


def watch_command(args: argparse.Namespace, ctx: Context) -> int:
    return watch(ctx, args.job_id)


def cancel_command(args: argparse.Namespace, ctx: Context) -> int:
    job = plain(ctx.client.jobs.cancel(args.job_id))
    ctx.out.result(job, Text(f"job {job['id']} is {job['status']}"))
    return 0


def logs_command(args: argparse.Namespace, ctx: Context) -> int:
    out = ctx.out
    if args.follow:
        try:
            for event in ctx.client.jobs.stream(args.job_id):
                data = plain(event)
                if data.get("type") not in ("message", "metrics"):
                    continue
                out.jsonl(data) if out.json_mode else out.show(event_line(data))
        except KeyboardInterrupt:
            return DETACHED
        return 0
    events = [plain(e) for e in ctx.client.jobs.events(args.job_id)][::-1]
    if out.json_mode:
        out.json(events)
    else:
        for event in events:
            out.show(event_line(event))
    return 0


def _progress(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    if job["status"] in TERMINAL or not progress.get("epochs"):
        return "-"
    return f"epoch {progress.get('epoch', 0)}/{progress['epochs']}"
