"""Where a command's output goes, and in what form: a person's terminal, a pipe, or --json.

On a terminal (stdout a TTY, no --json) output is a rich Console with colours, progress bars
and spinners. In a pipe the same tables and charts are laid out by rich with no colour system
and no terminal features, so not one control character reaches the reader; progress is not
shown at all. With --json stdout holds exactly JSON (one document, or JSON Lines for streams)
and nothing else. Errors are one line on stderr, whatever the mode.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, TextIO, cast

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

ByteProgress = Callable[[int, int | None], None]
# Wide enough that tables and event lines in a pipe are not cut (COLUMNS overrides).
PIPE_WIDTH = 160


def plain(value: Any) -> Any:
    """A response object (pydantic) or anything else, as plain JSON-able data."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


class Output:
    def __init__(self, json_mode: bool, stdout: TextIO | None = None) -> None:
        self.stdout = stdout or sys.stdout
        self.json_mode = json_mode
        self.tty = _isatty(self.stdout) and not json_mode
        if self.tty:
            self.console = Console(file=self.stdout, highlight=False, emoji=False)
        else:
            width = int(os.environ.get("COLUMNS") or PIPE_WIDTH)
            self.console = Console(
                file=cast(TextIO, _Rstripped(self.stdout)),
                color_system=None,
                force_terminal=False,
                force_interactive=False,
                highlight=False,
                emoji=False,
                markup=True,
                width=width,
            )

    @property
    def unicode(self) -> bool:
        """Whether stdout takes block characters (bars); '#' bars otherwise."""
        return self.console.encoding.lower().startswith("utf")

    # Human output (never in --json mode).
    def show(self, *renderables: RenderableType) -> None:
        if not self.json_mode:
            self.console.print(*renderables)

    def hint(self, text: str) -> None:
        """A line for people (what to run next): on a terminal only, never in a script's way."""
        if self.tty:
            self.console.print(text, style="dim")

    # Machine output.
    def json(self, value: Any) -> None:
        self.stdout.write(json.dumps(plain(value), indent=2, ensure_ascii=False) + "\n")
        self.stdout.flush()

    def jsonl(self, value: Any) -> None:
        self.stdout.write(json.dumps(plain(value), ensure_ascii=False) + "\n")
        self.stdout.flush()

    def result(self, value: Any, *renderables: RenderableType) -> None:
        """A command's answer: `value` as JSON with --json, else `renderables` for people."""
        if self.json_mode:
            self.json(value)
        else:
            self.show(*renderables)

    # Progress (terminal only).
    @contextmanager
    def bytes_progress(self, description: str) -> Iterator[ByteProgress | None]:
        """A byte progress bar with transfer speed; yields its callback, or None off a
        terminal (the caller then reports no progress)."""
        if not self.tty:
            yield None
            return
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        task: TaskID = progress.add_task(description, total=None)
        sent_so_far = 0

        def update(sent: int, total: int | None) -> None:
            nonlocal sent_so_far
            sent_so_far = sent
            progress.update(task, completed=sent, total=total)

        with progress:
            yield update
            # A stream of unknown size (a folder zipped on the fly) ends as a full bar.
            progress.update(task, completed=sent_so_far, total=sent_so_far)

    def spinner(self, text: str) -> Any:
        """A spinner while waiting on the server (terminal only)."""
        return self.console.status(text) if self.tty else nullcontext()


def error(message: str) -> None:
    """The one line a failure prints, on stderr."""
    line = " ".join(str(message).split())
    print(f"hone: {line}", file=sys.stderr, flush=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Rstripped:
    """A pipe's stdout without the padding rich puts at the end of table lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.encoding = getattr(stream, "encoding", "utf-8")

    def write(self, text: str) -> int:
        *lines, rest = text.split("\n")  # only whole lines: a partial one may continue
        self.stream.write("".join(line.rstrip() + "\n" for line in lines) + rest)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()
