"""The ``amictl`` commands of the project's docs (README.md, docs/*.md), as the docs test
runs them (issue 31 item 9; the convention is in docs/contributing.md).

A fenced code block whose info string has the word ``sandbox`` (```` ```sh sandbox ````) is a
*sandbox example*: each ``amictl`` command in it runs as written on the demo sandbox, in
order. Every other block is *illustrative* (real AWS: profiles, made-up ids): its commands
are only parsed (the command and its options exist). In a ``console`` block a command is a
line starting with ``$ ``; in any other block every line is one. ``.venv/bin/`` before
``amictl`` is dropped; a trailing ``\\`` joins lines; a trailing comment ``# exits N`` says the
exit code the docs promise (0 otherwise), any other trailing comment is text.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^\s*(```+|~~~+)\s*(.*)$")
EXITS = re.compile(r"#\s*exits?\s+(\d+)\b")


@dataclass(frozen=True)
class DocCommand:
    file: str  # relative to the repo root
    line: int
    text: str  # the command as written (joined continuation lines)
    args: list[str]  # the words after `amictl`, without a redirection
    sandbox: bool  # in a sandbox example block
    exit_code: int  # what the docs promise (`# exits N`), 0 otherwise
    stdout_to: str | None  # `> FILE`: the command's output goes there

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _logical_lines(block: list[tuple[int, str]], console: bool) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for n, raw in block:
        line = raw.strip()
        if pending is None:
            if console:
                if not line.startswith("$ "):
                    continue  # output
                line = line[2:].strip()
            pending = (n, line)
        else:
            pending = (pending[0], pending[1] + " " + line)
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1].rstrip())
            continue
        out.append(pending)
        pending = None
    if pending is not None:
        out.append(pending)
    return out


def _command(file: str, n: int, line: str, sandbox: bool) -> DocCommand | None:
    words = line.split(None, 1)
    if not words or words[0] not in ("amictl", ".venv/bin/amictl"):
        return None
    m = EXITS.search(line)
    try:
        args = shlex.split(line, comments=True)[1:]
    except ValueError as exc:
        raise AssertionError(f"{file}:{n}: cannot split {line!r}: {exc}") from None
    stdout_to = None
    if ">" in args:
        i = args.index(">")
        stdout_to, args = args[i + 1], args[:i]
    text = line.replace(".venv/bin/amictl", "amictl", 1)
    return DocCommand(file, n, text, args, sandbox, int(m.group(1)) if m else 0, stdout_to)


def commands(path: Path) -> list[DocCommand]:
    """Every ``amictl`` command in the file's code blocks, in order."""
    rel = str(path.relative_to(ROOT))
    out: list[DocCommand] = []
    block: list[tuple[int, str]] | None = None
    info = ""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line)
        if m and block is None:
            block, info = [], m.group(2).strip()
            continue
        if m and block is not None and not m.group(2).strip():
            words = info.split()
            lang = words[0] if words else ""
            if lang in ("", "sh", "bash", "shell", "console", "sandbox"):
                sandbox = "sandbox" in words
                for ln, text in _logical_lines(block, console=lang == "console"):
                    cmd = _command(rel, ln, text, sandbox)
                    if cmd is not None:
                        out.append(cmd)
            block = None
            continue
        if block is not None:
            block.append((n, line))
    return out
