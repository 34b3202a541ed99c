"""`hone models list|show|alias|download`: the registry, a version's metrics (per-label table
and confusion matrix, or regression errors), aliases, and taking a model out of Hone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.text import Text

from hone.cli import render
from hone.cli.common import Context, resolve_version, split_ref
from hone.cli.output import plain

CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "micro_f1", "hamming_accuracy", "val_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2", "spearman", "val_loss")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", help="list, show, alias and download models")
    commands = models.add_subparsers(dest="models_command", required=True, metavar="COMMAND")
    commands.add_parser("list", parents=[common], help="the project's models").set_defaults(
        handler=list_command
    )
    show = commands.add_parser("show", parents=[common], help="a model, or one version")
    show.add_argument("ref", metavar="NAME[@VERSION]", help="VERSION: a number, alias or latest")
    show.set_defaults(handler=show_command)
    alias = commands.add_parser("alias", parents=[common], help="point an alias at a version")
    alias.add_argument("name", metavar="NAME")
    alias.add_argument("alias", metavar="ALIAS", help="e.g. production")
    alias.add_argument("version", metavar="VERSION", type=int)
    alias.set_defaults(handler=alias_command)
    download = commands.add_parser("download", parents=[common], help="download a version")
    download.add_argument("ref", metavar="NAME[@VERSION]")
    download.add_argument(
        "-o", "--output", default=None, metavar="DIR", help="folder to extract into"
    )
    download.set_defaults(handler=download_command)


def list_command(args: argparse.Namespace, ctx: Context) -> int:
    rows = [plain(m) for m in ctx.client.models.list()]
    if ctx.out.json_mode:
        ctx.out.json(rows)
        return 0
    table = [
        (
            render.text(m["name"]), m.get("task"), m.get("latest_version"),
            ", ".join(f"{a}->{v}" for a, v in (m.get("aliases") or {}).items()) or "-",
            render.when(m.get("created_at")),
        )
        for m in rows
    ]  # fmt: skip
    ctx.out.show(render.table(None, ["name", "task", "latest", "aliases", "created"], table))
    return 0


def show_command(args: argparse.Namespace, ctx: Context) -> int:
    name, version = split_ref(args.ref)
    client, out = ctx.client, ctx.out
    detail = None
    if version is None:
        detail = plain(client.models.get(name))
        if out.json_mode:
            out.json(detail)
            return 0
        out.show(model_summary(detail))
        if detail.get("latest_version") is None:
            return 0
    number = resolve_version(client, name, version)
    found = plain(client.models.version(name, number))
    if out.json_mode:
        out.json(found)
    else:
        out.show(*([Text("")] if detail else []), version_summary(found))
    return 0


def alias_command(args: argparse.Namespace, ctx: Context) -> int:
    answer = ctx.client.models.set_alias(args.name, args.alias, args.version)
    ctx.out.result(answer, Text(f"{args.name}@{args.alias} -> version {args.version}"))
    return 0


def download_command(args: argparse.Namespace, ctx: Context) -> int:
    name, version = split_ref(args.ref)
    number = resolve_version(ctx.client, name, version)
    dest = Path(args.output or f"{name}-v{number}")
    with ctx.out.bytes_progress(f"downloading {name} v{number}") as progress:
        folder = ctx.client.models.download(name, number, dest, progress=progress)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if ctx.out.json_mode:
        ctx.out.json({"name": name, "version": number, "path": str(folder), "files": files})
        return 0
    ctx.out.show(Text.assemble(("Downloaded to ", "bold"), str(folder)))
    ctx.out.show(Text(_loading(folder)))
    return 0


def model_summary(m: dict[str, Any]) -> RenderableType:
    aliases = ", ".join(f"{a} -> {v}" for a, v in (m.get("aliases") or {}).items())
    head = render.fields(
        [
            ("Model", Text(m["name"], style="bold")),
            ("Task", m.get("task")),
            ("Latest ready", m.get("latest_version")),
            ("Aliases", aliases or None),
        ]
    )
    regression = "regression" in str(m.get("task"))
    scores = ("rmse", "r2") if regression else ("accuracy", "macro_f1")
    rows = [
        (
            v["version"], v.get("status"), v.get("backbone"), v.get("method_chosen"),
            *(v.get(s) for s in scores), render.when(v.get("created_at")),
        )
        for v in m.get("versions") or []
    ]  # fmt: skip
    names = ["RMSE", "R²"] if regression else ["accuracy", "macro F1"]
    columns = ["version", "status", "backbone", "method", *names, "created"]
    versions = render.table("Versions", columns, rows)
    return render.stack(head, versions if rows else None)


def version_summary(v: dict[str, Any]) -> RenderableType:
    metrics = v.get("metrics") or {}
    regression = "regression" in str(v.get("task")) or "rmse" in metrics
    head = render.fields(
        [
            ("Version", Text(f"{v['name']}@{v['version']}", style="bold")),
            ("Status", v.get("status")),
            ("Task", v.get("task")),
            ("Backbone", v.get("backbone")),
            ("Method", v.get("method_chosen")),
            ("Why", v.get("method_reason")),
            ("Trained by", v.get("job_id")),
            ("Dataset", v.get("dataset_id")),
            ("Serving", v.get("runtime")),
            ("Created", render.when(v.get("created_at"))),
        ]
    )
    keys = REGRESSION_METRICS if regression else CLASSIFICATION_METRICS
    line = render.fields([("Metrics", render.metric_line(metrics, keys))])
    if regression:
        return render.stack(head, line, _intervals(metrics), _per_target(metrics))
    labels = v.get("labels") or list(metrics.get("per_label") or {})
    matrix = metrics.get("confusion_matrix")
    per_label = render.per_label(metrics["per_label"]) if metrics.get("per_label") else None
    return render.stack(
        head, line, per_label, render.confusion_matrix(labels, matrix) if matrix else None
    )


def _intervals(metrics: dict[str, Any]) -> RenderableType | None:
    intervals = metrics.get("intervals") or {}
    if not intervals:
        return None
    coverage, empirical = intervals.get("coverage"), intervals.get("empirical_coverage")
    return Text(
        f"Intervals: {render.percent(coverage)} coverage asked, {render.percent(empirical)} "
        f"held on validation; mean width {render.number(intervals.get('mean_width'))}"
    )


def _per_target(metrics: dict[str, Any]) -> RenderableType | None:
    targets = metrics.get("per_target") or {}
    if not targets:
        return None
    columns = ["mae", "rmse", "r2", "spearman", "interval_width"]
    rows = [(render.text(t), *(m.get(c) for c in columns)) for t, m in targets.items()]
    return render.table("Per target", ["target", *columns], rows)


def _loading(folder: Path) -> str:
    """How to load the folder without Hone, from the library its config.json names."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    library = config.get("library")
    weights = folder / "model.safetensors"
    if library == "timm":
        backbone = config.get("backbone") or {}
        arch = backbone.get("arch", "ARCH")
        if backbone.get("stages"):
            return (
                "Load it with timm (labels and preprocessing are in config.json; see the "
                f"README): timm.create_model({arch!r}, num_classes=0) takes the weights under "
                f"'backbone.' in {str(weights)!r}; 'classifier.' reads its pooled features "
                f"beside the means of its last {backbone['stages']} stages (and, with "
                "'pixel_side', the input averaged down)."
            )
        return (
            "Load it with timm (labels and preprocessing are in config.json; see the README):\n"
            f"  model = timm.create_model({arch!r}, num_classes=NUM_LABELS)\n"
            f"  safetensors.torch.load_model(model, {str(weights)!r})"
        )
    if library == "transformers":
        return (
            "Load it with transformers (labels and pooling are in config.json; see the "
            f"README): the config and tokenizer are in {str(folder / 'hf')!r}, the weights "
            f"in {str(weights)!r}."
        )
    return f"Its files are described in {str(folder / 'config.json')!r} (see the README)."
