"""The repository is self-contained: every document a file cites is in the repository, and
no runtime output (broker tables, caches) is committed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A document named in code or prose: `docs/architecture.md`, `bench/RESULTS.md`, `README.md`.
CITED = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".json", ".cfg", ".ini", ".txt", ""}


def _repository_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name and (ROOT / name).is_file()]


def test_every_cited_document_is_in_the_repository() -> None:
    files = _repository_files()
    names = {path.relative_to(ROOT).as_posix() for path in files}
    basenames = {path.name for path in files}
    missing = []
    for path in files:
        if path.suffix not in TEXT_SUFFIXES:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for cited in CITED.findall(line):
                found = cited in names if "/" in cited else cited in basenames
                if not found:
                    missing.append(f"{path.relative_to(ROOT)}:{number} cites {cited}")
    assert missing == []


def test_no_broker_or_runtime_files_are_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    runtime = [
        name
        for name in tracked
        if name.endswith(".exchange") or name.split("/")[0] in {"control", "data", "bench/out"}
    ]
    assert runtime == []
