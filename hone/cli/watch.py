"""Watching a job: a live view on a terminal, event lines in a pipe, the final job with --json.

The view has two sources: the job's event stream (SSE, read on a background thread so that a
quiet stream never freezes the screen) and the job itself, fetched about once a second for its
progress and latest metrics, which the worker updates without an event. Ctrl-C detaches: the
job keeps running on the server, and the view says how to come back or cancel it.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections import deque
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

import hone
from hone.cli import render
from hone.cli.common import Context
from hone.cli.jobview import TERMINAL, event_line, outcome
from hone.cli.output import error, plain

POLL_SECONDS = 1.0
SHOWN_EVENTS = 8
# After the job is terminal, how long the view waits for the stream to deliver the last events.
STREAM_GRACE_SECONDS = 5.0
DETACHED = 130  # the shell's code for "ended by Ctrl-C"
_END = object()


def watch(ctx: Context, job_id: str) -> int:
    """Follow the job to its end; the exit code is the outcome's (0 only for succeeded)."""
    try:
        if ctx.out.json_mode:
            return outcome(ctx, _wait_quietly(ctx.client, job_id))
        if not ctx.out.tty:
            return outcome(ctx, _follow_lines(ctx, job_id))
        return outcome(ctx, _live(ctx, job_id))
    except KeyboardInterrupt:
        _detached(ctx, job_id)
        return DETACHED


def _wait_quietly(client: hone.Client, job_id: str) -> dict[str, Any]:
    try:
        return plain(client.jobs.wait(job_id))
    except hone.JobFailed as failed:
        return plain(failed.job)


def _follow_lines(ctx: Context, job_id: str) -> dict[str, Any]:
    for event in ctx.client.jobs.stream(job_id):
        data = plain(event)
        if data.get("type") in ("message", "metrics"):
            ctx.out.show(event_line(data))
    return plain(ctx.client.jobs.get(job_id))


def _detached(ctx: Context, job_id: str) -> None:
    lines = (
        f"Detached from job {job_id}; it keeps running on the server.",
        f"  reattach: hone jobs watch {job_id}",
        f"  cancel:   hone jobs cancel {job_id}",
    )
    if ctx.out.tty:
        for line in lines:
            ctx.out.console.print(Text(line))
    else:
        error(" ".join(lines))


def _pump(client: hone.Client, job_id: str, inbox: queue.Queue[Any]) -> None:
    """The stream, onto `inbox`: each event, then an exception if it broke, then _END."""
    try:
        for event in client.jobs.stream(job_id):
            inbox.put(plain(event))
    except Exception as exc:  # the view carries on polling the job without events
        inbox.put(exc)
    finally:
        inbox.put(_END)


class _CtrlC:
    """Ctrl-C as a flag the view's loop reads, instead of a KeyboardInterrupt raised wherever
    the main thread happens to be (inside an HTTP read, a lock's `with`, a terminal write),
    which can leave a lock held or a half-written frame and the view hanging on its way out."""

    def __init__(self) -> None:
        self.pressed = False

    def __call__(self, _signum: int, _frame: object) -> None:
        self.pressed = True


def _live(ctx: Context, job_id: str) -> dict[str, Any]:
    ctrl_c = _CtrlC()
    previous = signal.signal(signal.SIGINT, ctrl_c)
    try:
        job = _live_until(ctx, job_id, ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)
    if ctrl_c.pressed:
        raise KeyboardInterrupt
    return job


def _live_until(ctx: Context, job_id: str, ctrl_c: _CtrlC) -> dict[str, Any]:
    client = ctx.client
    job = plain(client.jobs.get(job_id))
    events: deque[dict[str, Any]] = deque(maxlen=SHOWN_EVENTS)
    inbox: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=_pump, args=(client, job_id, inbox), daemon=True).start()
    streaming, terminal_since = True, None
    next_poll = time.monotonic() + POLL_SECONDS
    with Live(view(job, events), console=ctx.out.console, refresh_per_second=4) as live:
        while not ctrl_c.pressed:
            try:
                item = inbox.get(timeout=0.25)
                while True:
                    if item is _END:
                        streaming = False
                    elif isinstance(item, dict) and item.get("type") in ("message", "metrics"):
                        events.append(item)
                    item = inbox.get_nowait()
            except queue.Empty:
                pass
            now = time.monotonic()
            if now >= next_poll or not streaming:
                job = plain(client.jobs.get(job_id))
                next_poll = now + POLL_SECONDS
            live.update(view(job, events))
            if job["status"] in TERMINAL:
                terminal_since = terminal_since or now
                if not streaming or now - terminal_since > STREAM_GRACE_SECONDS:
                    return job
            elif not streaming:
                time.sleep(POLL_SECONDS)  # no stream (it broke): poll at its pace
    return job


def view(job: dict[str, Any], events: deque[dict[str, Any]] | list[dict[str, Any]]) -> Group:
    """One frame: the job, its phase, a progress bar with ETA, metrics and recent events."""
    progress = job.get("progress") or {}
    epoch, epochs = progress.get("epoch") or 0, progress.get("epochs")
    step, total = progress.get("step") or 0, progress.get("total_steps")
    head = Text.assemble(
        ("Job ", "bold"), (job["id"], "bold"), f"  model {job.get('model_name')}",
        f"  backbone {job.get('backbone')}  method {job.get('method')}  ",
        (str(job["status"]), _STATUS_STYLE.get(job["status"], "")),
    )  # fmt: skip
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold")
    rows.add_column()
    rows.add_row("Phase", Text(phase(job)))
    bar = Table.grid(padding=(0, 2))
    bar.add_row(
        ProgressBar(total=float(total or 1), completed=float(step if total else 0), width=40),
        Text(
            f"epoch {epoch}/{epochs if epochs is not None else '?'}  "
            f"step {step}/{total if total is not None else '?'}  "
            f"ETA {render.duration(progress.get('eta_seconds'))}"
        ),
    )
    rows.add_row("Progress", bar)
    rows.add_row("Metrics", render.metric_line(job.get("metrics") or {}))
    recent = [_one_line(event_line(e)) for e in events] or [Text("(none yet)", style="dim")]
    rows.add_row("Events", Group(*recent))
    hint = Text("Ctrl-C detaches; the job keeps running.", style="dim")
    return Group(head, rows, hint)


def _one_line(line: Text) -> Text:
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def phase(job: dict[str, Any]) -> str:
    status = job["status"]
    progress = job.get("progress") or {}
    if status == "queued":
        return "queued: waiting for a worker"
    if status in TERMINAL or status == "cancelling":
        return str(status)
    if (progress.get("epoch") or 0) >= 1:
        return f"training: epoch {progress['epoch']} of {progress.get('epochs') or '?'}"
    if progress.get("total_steps"):
        return "preparing: computing features"
    return "starting: loading the backbone and the data"


_STATUS_STYLE = {
    "queued": "yellow", "running": "cyan", "succeeded": "bold green", "failed": "bold red",
    "cancelled": "red", "cancelling": "yellow",
}  # fmt: skip
