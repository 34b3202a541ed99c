"""`hone predict MODEL[@VERSION] INPUT...`: image files, folders of images, `--text`, or `-`
for JSON Lines on stdin; top-k tables for people, one JSON line per input for scripts.

Inputs go to the server in requests of at most BATCH, and each answer is printed before the
next request, so a long list streams instead of waiting for the last image.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

import hone
from hone.cli import render
from hone.cli.common import Context, Failure, UsageError, describe, resolve_version, split_ref
from hone.cli.output import plain

BATCH = 32
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    predict = sub.add_parser("predict", parents=[common], help="predict with a model")
    predict.add_argument("model", metavar="MODEL[@VERSION]", help="VERSION: number or alias")
    predict.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="image files, folders of images, or - for JSON Lines on stdin "
        '({"text": ...} or {"image_path": ...} a line)',
    )  # fmt: skip
    predict.add_argument(
        "--text", action="append", default=[], help="a text to classify (repeatable)"
    )
    predict.add_argument("--top-k", type=int, default=None, help="labels shown per input")
    predict.add_argument(
        "--coverage", type=float, default=None, help="regression: the interval's coverage"
    )
    predict.set_defaults(handler=predict_command)


def gather(inputs: list[str], texts: list[str]) -> tuple[list[str], list[Path]]:
    """(texts, image paths) from the command line, in order; a UsageError for a mix or none."""
    texts, images = list(texts), []
    for item in inputs:
        if item == "-":
            more_texts, more_images = read_jsonl(sys.stdin.read().splitlines())
            texts += more_texts
            images += more_images
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UsageError(f"{path}: no images in this folder")
            images += found
        elif path.is_file():
            images.append(path)
        else:
            raise FileNotFoundError(2, "no such file or folder", str(path))
    if texts and images:
        raise UsageError("give texts or images, not both: a model takes one kind of input")
    if not texts and not images:
        raise UsageError("nothing to predict: give image files, a folder, --text, or -")
    return texts, images


def read_jsonl(lines: list[str]) -> tuple[list[str], list[Path]]:
    texts: list[str] = []
    images: list[Path] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"stdin line {number} is not JSON: {exc}") from None
        if isinstance(row, dict) and isinstance(row.get("text"), str):
            texts.append(row["text"])
        elif isinstance(row, dict) and isinstance(row.get("image_path"), str):
            images.append(Path(row["image_path"]))
        else:
            raise UsageError(
                f'stdin line {number}: expected {{"text": ...}} or {{"image_path": ...}}'
            )
    return texts, images


def batches(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def predict_command(args: argparse.Namespace, ctx: Context) -> int:
    name, version = split_ref(args.model)
    texts, images = gather(args.inputs, args.text)
    if version == "latest":
        version = resolve_version(ctx.client, name, version)
    inputs: list[Any] = texts or images
    for chunk in batches(inputs):
        try:
            answer = ctx.client.predict(
                name,
                texts=chunk if texts else None,
                files=None if texts else chunk,
                version=version if isinstance(version, int) else None,
                alias=version if isinstance(version, str) else None,
                top_k=args.top_k,
                coverage=args.coverage,
            )
        except hone.APIError as exc:
            raise Failure(_naming_inputs(exc, chunk)) from None
        model = plain(answer.model)
        for item, prediction in zip(chunk, answer.predictions, strict=True):
            shown = str(item)
            fields = {k: v for k, v in plain(prediction).items() if v is not None}
            if ctx.out.json_mode:
                ctx.out.jsonl({"input": shown, "model": model, **fields})
            else:
                ctx.out.show(one(shown, fields, ascii_only=not ctx.out.unicode))
    return 0


def _naming_inputs(exc: hone.APIError, chunk: list[Any]) -> str:
    """The API's complaint, with `file[3]` / `inputs[3]` (an index into this request) replaced
    by the input the user gave."""
    message = describe(exc)

    def named(match: re.Match[str]) -> str:
        index = int(match.group(2))
        return repr(str(chunk[index])) if index < len(chunk) else match.group(0)

    return re.sub(r"\b(file|inputs)\[(\d+)\]", named, message)


def one(shown: str, p: dict[str, Any], ascii_only: bool = False) -> RenderableType:
    """One input's prediction: the answer on a line, then the top-k scores as a table."""
    title = Text.assemble((shown if len(shown) <= 80 else shown[:77] + "...", "bold"), "  ->  ")
    if p.get("value") is not None:
        values = p["value"] if isinstance(p["value"], list) else [p["value"]]
        spans = p["interval"] if isinstance(p["value"], list) else [p["interval"]]
        names = p.get("targets") or [""] * len(values)
        parts = [
            f"{f'{n} ' if n else ''}{render.number(v)} [{render.number(lo)}, {render.number(hi)}]"
            for n, v, (lo, hi) in zip(names, values, spans, strict=False)
        ]
        title.append(f"{', '.join(parts)}  ({render.percent(p.get('coverage'))} interval)")
        return title
    if p.get("labels") is not None:
        title.append(", ".join(p["labels"]) or "(no label)", "bold cyan")
    else:
        title.append(str(p.get("label")), "bold cyan")
        title.append(f"  {p['score']:.3f}" if p.get("score") is not None else "")
    rows = [
        (
            render.text(s["label"]),
            Text(f"{s['score']:.3f}", justify="right"),
            Text(render.bar(s["score"], 20, ascii_only), "cyan"),
        )
        for s in p.get("scores") or []
    ]
    scores = render.table(None, ["label", "score", ""], rows) if rows else Text("")
    return Group(title, scores, Text(""))
