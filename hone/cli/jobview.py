"""How a job reads for a person: its summary, an event line, a dry run's plan, and the outcome
that ends `hone train --watch` / `hone jobs watch` (and sets their exit code)."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text

import hone
from hone.cli import render
from hone.cli.common import Context
from hone.cli.output import error, plain

TERMINAL = ("succeeded", "failed", "cancelled")
_LEVEL_STYLE = {"warn": "yellow", "error": "bold red"}
# The metric an outcome line names first, best first, when the version has it.
KEY_METRICS = ("accuracy", "macro_f1", "rmse", "mae", "r2", "spearman")


def event_line(event: dict[str, Any]) -> Text:
    """'12:00:03 info  epoch 2/10: train_loss 0.41, ...' (the time of day, UTC)."""
    stamp = render.when(event.get("created_at"))[-8:]
    level = str(event.get("level") or "info")
    return Text.assemble(
        (f"{stamp} ", "dim"), (f"{level:<5} ", _LEVEL_STYLE.get(level, "dim")),
        (str(event.get("message") or ""), _LEVEL_STYLE.get(level, "")),
    )  # fmt: skip


def progress_text(progress: dict[str, Any]) -> str | None:
    if not progress or not (progress.get("epochs") or progress.get("total_steps")):
        return None
    return (
        f"epoch {progress.get('epoch', 0)}/{progress.get('epochs') or '?'}, "
        f"step {progress.get('step', 0)}/{progress.get('total_steps') or '?'}, "
        f"ETA {render.duration(progress.get('eta_seconds'))}"
    )


def summary(job: dict[str, Any]) -> RenderableType:
    version = job.get("model_version")
    err = job.get("error")
    chosen = job.get("method_chosen")
    method = f"{job.get('method')}" + (f" -> kept {chosen}" if chosen else "")
    return render.fields(
        [
            ("Job", Text(job["id"], style="bold")),
            ("Status", job.get("status")),
            ("Model", job.get("model_name")),
            ("Version", f"{version['name']}@{version['version']}" if version else None),
            ("Dataset", job.get("dataset_id")),
            ("Validation", job.get("validation_dataset_id")),
            ("Backbone", job.get("backbone")),
            ("Method", method),
            ("Why", job.get("method_reason")),
            ("Hyperparameters", render.metric_line(job.get("hyperparameters") or {})),
            ("Seed", job.get("seed")),
            ("Progress", progress_text(job.get("progress") or {})),
            ("Metrics", render.metric_line(job.get("metrics") or {})),
            ("Created", render.when(job.get("created_at"))),
            ("Started", render.when(job.get("started_at")) if job.get("started_at") else None),
            ("Finished", render.when(job.get("finished_at")) if job.get("finished_at") else None),
            ("Error", Text(f"{err.get('code')}: {err.get('message')}", "red") if err else None),
        ]
    )


def plan_summary(answer: dict[str, Any]) -> RenderableType:
    plan = answer.get("plan") or {}
    budget = plan.get("time_budget_seconds")
    head = render.fields(
        [
            ("Dry run", Text(f"model {answer.get('model_name')} on {answer.get('backbone')}")),
            ("Dataset", f"{answer.get('dataset_id')} ({answer.get('num_examples')} examples)"),
            ("Method", plan.get("method")),
            ("Hyperparameters", render.metric_line(plan.get("hyperparameters") or {})),
            ("Estimated", f"{render.duration(plan.get('estimated_seconds'))} on a "
                          f"{plan.get('device')} worker"),
            ("Time budget", render.duration(budget) if budget is not None else None),
        ]
    )  # fmt: skip
    rows = [
        (c.get("name"), render.text(c.get("description")),
         render.duration(c.get("estimated_seconds")))
        for c in plan.get("candidates") or []
    ]  # fmt: skip
    candidates = render.table("Tries, in order", ["candidate", "what", "estimated"], rows)
    return render.stack(head, candidates if rows else None)


def outcome(ctx: Context, job: dict[str, Any]) -> int:
    """What the job came to, and the exit code: 0 only when it succeeded."""
    out = ctx.out
    status = job["status"]
    if out.json_mode:
        out.json(job)
    elif status == "succeeded":
        out.show(_success(ctx, job))
    if status == "succeeded":
        version = job.get("model_version")
        if version:
            ref = f"{version['name']}@{version['version']}"
            out.hint(f"Next: hone models show {ref}   ·   hone predict {ref} FILE...")
        return 0
    err = job.get("error") or {}
    why = f": {err.get('code')}: {err.get('message')}" if err.get("message") else ""
    error(f"job {job['id']} {'was cancelled' if status == 'cancelled' else status}{why}")
    return 1


def _success(ctx: Context, job: dict[str, Any]) -> Text:
    version = job.get("model_version") or {}
    metrics: dict[str, Any] = {}
    if version:
        try:
            metrics = plain(ctx.client.models.version(version["name"], version["version"]))
            metrics = metrics.get("metrics") or {}
        except hone.HoneError:
            metrics = {}
    if not metrics:
        metrics = {k.removeprefix("val_"): v for k, v in (job.get("metrics") or {}).items()}
    chosen = job.get("method_chosen") or job.get("method")
    reason = f" ({job['method_reason']})" if job.get("method_reason") else ""
    where = f"model {version.get('name')} version {version.get('version')}" if version else ""
    return Text.assemble(
        ("Succeeded: ", "bold green"), f"job {job['id']} -> {where}\n",
        ("Method: ", "bold"), f"{chosen}{reason}\n",
        ("Metrics: ", "bold"), render.metric_line(metrics, KEY_METRICS),
    )  # fmt: skip
