"""Which files of the named paths are read, and how.

A path is a file or a directory (a git checkout is a directory: its working tree is
read). Directories are walked recursively, in name order, without following symlinks,
skipping version-control and tool caches (``SKIP_DIRS``, and ``.terraform/providers``:
provider binaries; ``.terraform/modules`` is read, it holds the modules the code uses).

- ``.tf``, ``.tfvars``, ``.hcl`` (``.pkr.hcl``, ``.pkrvars.hcl``): HCL (Terraform, Packer);
- ``.tfstate``, ``.tfstate.backup``: Terraform state (JSON);
- ``.json``, ``.yaml``, ``.yml``, ``.template``: YAML/JSON documents (CloudFormation and
  SAM templates, Packer's legacy JSON, Terraform and Packer in JSON syntax, anything else). In a walk, such a file is read only
  when its text holds one of ``MARKERS`` (a file without any cannot hold a reference amictl
  reads); a file named on its own is always read, whatever its suffix.

Every file read must parse: one that does not (or cannot be read) is an :class:`IacError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..inventory.collectors import CHANNEL_PREFIX
from .documents import read_document, read_state
from .findings import Findings, IacError
from .hcl import read_hcl

HCL = (".tf", ".tfvars", ".hcl")
STATE = (".tfstate", ".tfstate.backup")
DOCUMENTS = (".json", ".yaml", ".yml", ".template")
MARKERS = (
    "ami-",
    "resolve:ssm:",
    "AWS::SSM::Parameter",
    CHANNEL_PREFIX,
    "source_ami_filter",
    "aws_ami",
    "amazon-ami",
)
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)


def kind_of(name: str) -> str | None:
    if name.endswith(STATE):
        return "state"
    if name.endswith(HCL):
        return "hcl"
    if name.endswith(DOCUMENTS):
        return "document"
    return None


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    def fail(exc: OSError) -> None:
        raise IacError(str(exc.filename or root), None, f"cannot read: {exc.strerror or exc}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS and not (here.name == ".terraform" and d == "providers")
        )
        for name in sorted(filenames):
            kind = kind_of(name)
            if kind is not None:
                yield here / name, kind


def files(paths: list[str]) -> Iterator[tuple[Path, str, bool]]:
    """(file, kind, named on its own) for every file the paths hold."""
    for p in paths:
        path = Path(p)
        try:
            if path.is_dir():
                for f, kind in _walk(path):
                    yield f, kind, False
                continue
            if not path.exists():
                raise IacError(p, None, "no such file or directory")
        except OSError as exc:
            raise IacError(p, None, f"cannot read: {exc.strerror or exc}") from None
        yield path, kind_of(path.name) or "document", True


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IacError(str(path), None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise IacError(str(path), None, f"cannot read: {exc.strerror or exc}") from None


def read_paths(paths: list[str]) -> Findings:
    """Everything the files of ``paths`` say; raises :class:`IacError` on the first file
    that cannot be read or parsed."""
    out = Findings()
    for path, kind, named in files(paths):
        text = _text(path)
        name = str(path)
        if kind == "hcl":
            out.extend(read_hcl(name, text))
        elif kind == "state":
            out.extend(read_state(name, text))
        elif named or any(m in text for m in MARKERS):
            out.extend(read_document(name, text))
    return out
