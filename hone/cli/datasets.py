"""`hone datasets upload|list|show|delete`: uploads with a byte progress bar, then a spinner
while the server audits the data, then the audit as a summary a person can act on."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

import hone
from hone.cli import render
from hone.cli.common import Context
from hone.cli.output import plain

TASKS = ["image_classification", "text_classification", "image_regression", "text_regression"]
# Skipped files listed by name in the summary; the counts cover every one.
SHOWN_SKIPS = 10


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    datasets = sub.add_parser("datasets", help="upload, list, show and delete datasets")
    commands = datasets.add_subparsers(dest="datasets_command", required=True, metavar="COMMAND")
    upload = commands.add_parser("upload", parents=[common], help="upload a dataset")
    upload.add_argument("path", help="a .zip, .csv or .jsonl file, or a folder of images")
    upload.add_argument("--task", required=True, choices=TASKS)
    upload.add_argument("--name", default=None, help="a name for the dataset")
    upload.add_argument("--text-column", default=None, help="CSV/JSONL text column (text)")
    upload.add_argument("--label-column", default=None, help="CSV/JSONL label column (label)")
    upload.add_argument(
        "--target-column", default=None, help="regression target column(s), comma-separated"
    )
    upload.add_argument(
        "--multilabel", action="store_true", default=None, help="several labels per example"
    )
    upload.add_argument(
        "--wait", action="store_true", help="wait until the server has processed it"
    )
    upload.set_defaults(handler=upload_command)
    listing = commands.add_parser("list", parents=[common], help="list datasets, newest first")
    listing.add_argument("--limit", type=int, default=None, help="at most this many")
    listing.set_defaults(handler=list_command)
    show = commands.add_parser("show", parents=[common], help="a dataset and its audit")
    show.add_argument("dataset_id", metavar="ID")
    show.set_defaults(handler=show_command)
    delete = commands.add_parser("delete", parents=[common], help="delete a dataset")
    delete.add_argument("dataset_id", metavar="ID")
    delete.set_defaults(handler=delete_command)


def upload_command(args: argparse.Namespace, ctx: Context) -> int:
    out, client = ctx.out, ctx.client
    source = Path(args.path)
    if not source.exists():
        raise FileNotFoundError(2, "no such file or folder", str(source))
    label = f"uploading {source.name}" + ("/" if source.is_dir() else "")
    with out.bytes_progress(label) as progress:
        dataset = client.datasets.upload(
            source,
            task=args.task,
            name=args.name,
            text_column=args.text_column,
            label_column=args.label_column,
            target_column=args.target_column,
            multilabel=args.multilabel,
            progress=progress,
        )
    if args.wait and dataset.status == "processing":
        try:
            with out.spinner(f"processing {dataset.id} on the server"):
                dataset = client.datasets.wait(dataset.id)
        except hone.DatasetFailed as failed:
            _show(ctx, failed.dataset)
            raise
    _show(ctx, dataset)
    if dataset.status == "failed":
        raise hone.DatasetFailed(dataset)
    if dataset.status == "processing":
        out.hint(f"Still processing: see it with `hone datasets show {dataset.id}`.")
    elif out.tty:
        out.show(Text(""))
        out.hint(
            f"Train on it: hone train --dataset {dataset.id} --backbone {_backbones(ctx, dataset)}"
            " --model NAME --watch"
        )
    return 0


def _backbones(ctx: Context, dataset: Any) -> str:
    """The backbones available for the dataset's modality, for the hint ('BACKBONE' if none)."""
    modality = str(dataset.task).split("_")[0]
    try:
        ids = [b.id for b in ctx.client.backbones.list() if b.modality == modality and b.available]
    except hone.HoneError:
        ids = []
    return "|".join(ids[:4]) if ids else "BACKBONE"


def list_command(args: argparse.Namespace, ctx: Context) -> int:
    rows = [plain(d) for d in ctx.client.datasets.list(limit=args.limit)]
    if ctx.out.json_mode:
        ctx.out.json(rows)
        return 0
    table = [
        (
            d["id"], d.get("name"), d.get("task"), _status(d), d.get("num_examples"),
            _labels(d), render.when(d.get("created_at")),
        )
        for d in rows
    ]  # fmt: skip
    columns = ["id", "name", "task", "status", "examples", "labels", "created"]
    ctx.out.show(render.table(None, columns, table))
    return 0


def show_command(args: argparse.Namespace, ctx: Context) -> int:
    _show(ctx, ctx.client.datasets.get(args.dataset_id))
    return 0


def delete_command(args: argparse.Namespace, ctx: Context) -> int:
    answer = ctx.client.datasets.delete(args.dataset_id)
    ctx.out.result(answer, Text(f"deleted dataset {args.dataset_id}"))
    return 0


def _show(ctx: Context, dataset: Any) -> None:
    ctx.out.result(dataset, summary(plain(dataset), ascii_only=not ctx.out.unicode))


def summary(d: dict[str, Any], ascii_only: bool = False) -> RenderableType:
    """A dataset and its audit: what was kept, per label or per target, what was skipped and
    why, duplicates, and the warnings, each in words."""
    report = d.get("report") or {}
    error = d.get("error") or {}
    head = render.fields(
        [
            ("Dataset", Text(f"{d['id']}  {d.get('name') or ''}".rstrip(), style="bold")),
            ("Task", d.get("task")),
            ("Status", Text(_status(d), style=_STATUS_STYLE.get(d.get("status") or "", ""))),
            ("Examples", d.get("num_examples")),
            ("Error", Text(f"{error.get('code')}: {error.get('message')}", "red")
                      if error else None),
        ]
    )  # fmt: skip
    counts = d.get("label_counts") or report.get("label_counts") or {}
    chart = render.bar_chart("Examples per label", counts, ascii_only) if counts else None
    ratio = report.get("imbalance_ratio")
    balance = Text(f"Imbalance ratio (largest / smallest label): {ratio:.2f}") if ratio else None
    return render.stack(
        head, chart, balance, _targets(report), _skipped(report), _duplicates(report),
        _warnings(report),
    )  # fmt: skip


def _targets(report: dict[str, Any]) -> RenderableType | None:
    stats = report.get("target_stats") or {}
    if not stats:
        return None
    columns = ["count", "min", "max", "mean", "std", "median", "distinct"]
    rows = [(render.text(name), *(s.get(c) for c in columns)) for name, s in stats.items()]
    return render.table("Targets", ["target", *columns], rows)


def _skipped(report: dict[str, Any]) -> RenderableType | None:
    counts = report.get("skipped_counts") or {}
    if not counts:
        return None
    total = sum(counts.values())
    reasons = ", ".join(f"{reason} {n}" for reason, n in counts.items())
    listed = report.get("skipped") or []
    rows = [
        (render.text(s.get("source")), s.get("reason"), render.text(s.get("detail")))
        for s in listed[:SHOWN_SKIPS]
    ]
    title = f"Skipped {total} item(s): {reasons}"
    return render.table(title, ["item", "reason", "why"], rows)


def _duplicates(report: dict[str, Any]) -> RenderableType | None:
    counts = report.get("duplicate_counts") or {}
    if not any(counts.values()):
        return None
    return Text(
        f"Duplicates: {counts.get('exact_groups', 0)} group(s) of identical items, "
        f"{counts.get('removed', 0)} copies removed; {counts.get('conflicting_groups', 0)} "
        "group(s) with conflicting labels."
    )


def _warnings(report: dict[str, Any]) -> RenderableType | None:
    warnings = report.get("warnings") or []
    if not warnings:
        return None
    lines = [Text("Warnings", style="bold")]
    lines += [Text(f"! {w.get('message')}", style="yellow") for w in warnings]
    return Group(*lines)


_STATUS_STYLE = {"ready": "green", "processing": "yellow", "failed": "red"}


def _status(d: dict[str, Any]) -> str:
    return str(d.get("status") or "-")


def _labels(d: dict[str, Any]) -> str:
    names = d.get("labels") or d.get("targets") or []
    shown = ", ".join(str(n) for n in names[:5])
    return shown + (f" +{len(names) - 5}" if len(names) > 5 else "")
