"""The commands and code the docs show, read from the files themselves so tests follow the
files: ```bash and ```python blocks of README.md by section, and the commands in
docker-compose.yml's header."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
COMPOSE = ROOT / "docker-compose.yml"

_FENCE = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_PYTHON = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def sections(markdown: str) -> dict[str, str]:
    """Text by `## ` heading; the part before the first heading is under ""."""
    found: dict[str, str] = {}
    title = ""
    for part in re.split(r"^(## .*)$", markdown, flags=re.MULTILINE):
        if part.startswith("## "):
            title = part[3:].strip()
        else:
            found[title] = found.get(title, "") + part
    return found


def bash_blocks(text: str) -> list[str]:
    """The ```bash blocks of `text`, in order."""
    return _FENCE.findall(text)


def readme_section(section: str) -> str:
    """The README section whose heading starts with `section` ("" for the introduction)."""
    parts = sections(README.read_text(encoding="utf-8"))
    titles = [t for t in parts if t.startswith(section)] if section else [""]
    assert len(titles) == 1, f"README.md should have one section {section!r}, has {titles}"
    return parts[titles[0]]


def readme_blocks(section: str) -> list[str]:
    """The ```bash blocks of the README section whose heading starts with `section`."""
    return bash_blocks(readme_section(section))


def readme_python(section: str) -> list[str]:
    """The ```python blocks of the README section whose heading starts with `section`."""
    return _PYTHON.findall(readme_section(section))


def command_lines(block: str) -> list[str]:
    """A block's commands, one per line (continuations joined), blank and comment lines out."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip()[:1] not in ("", "#")]


def compose_header_commands() -> list[str]:
    """The commands docker-compose.yml's header comment shows: its lines indented by `#   `
    (the prose lines have a single space after the `#`)."""
    commands = []
    for line in COMPOSE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   "):
            commands.append(line[1:].strip())
    return commands
