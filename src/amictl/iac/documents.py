"""YAML and JSON files: CloudFormation / SAM templates, Terraform state, Packer's legacy
JSON templates, and any other YAML/JSON file a walk finds that could hold a reference.

Templates are read with cfn-lint's decoder (``cfnlint.decode``), which knows the short
forms (``!Ref``, ``!Sub``, ``!GetAtt``, ...) and gives every value its line. Terraform
state is JSON: each resource instance's attributes are searched, named by the resource's
address (``module.app.aws_instance.web[0]``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .findings import Findings, IacError, Where
from .floating import lookup


def _line(node: Any) -> int | None:
    mark = getattr(node, "start_mark", None)
    line = getattr(mark, "line", None)
    return line + 1 if isinstance(line, int) else None


def _strings(
    node: Any, path: tuple[str, ...] = (), line: int | None = None
) -> Iterator[tuple[tuple[str, ...], str, int | None]]:
    """Every string value (and key), with its path and line (or the nearest parent's)."""
    line = _line(node) or line
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k, path, _line(k) or line)
            yield from _strings(v, (*path, str(k)), _line(k) or line)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*path, str(i)), line)
    elif isinstance(node, str):
        yield path, str(node), line


def _error_line(exc: Exception) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None and isinstance(getattr(mark, "line", None), int):
        return int(mark.line) + 1
    for m in getattr(exc, "matches", None) or []:
        if isinstance(getattr(m, "linenumber", None), int):
            return int(m.linenumber)
    lineno = getattr(exc, "lineno", None)
    return lineno if isinstance(lineno, int) else None


def _message(exc: Exception) -> str:
    for m in getattr(exc, "matches", None) or []:
        if getattr(m, "message", None):
            return str(m.message)
    problem = getattr(exc, "problem", None)
    if problem:
        return str(problem)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def parse_document(file: str, text: str) -> Any:
    """YAML or JSON (with CloudFormation's short forms) as values that know their line."""
    from cfnlint.decode import cfn_json, cfn_yaml  # slow to import: only when a file is read

    is_json = file.endswith(".json") or text.lstrip().startswith("{")
    try:
        return cfn_json.loads(text) if is_json else cfn_yaml.loads(text, file)
    except RecursionError:
        raise IacError(file, None, "nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's, named with its line
        what = "JSON" if is_json else "YAML"
        raise IacError(file, _error_line(exc), f"not valid {what}: {_message(exc)}") from None


def read_document(file: str, text: str) -> Findings:
    doc = parse_document(file, text)
    out = Findings(files=1)
    if isinstance(doc, dict) and isinstance(doc.get("builders"), list):
        for i, b in enumerate(doc["builders"]):
            f = b.get("source_ami_filter") if isinstance(b, dict) else None
            if isinstance(f, dict):
                name = b.get("name") or b.get("type") or str(i)
                out.floating.append(
                    lookup(dict(f), Where(file, _line(f), f"builders.{name}"), "source_ami_filter")
                )
    if isinstance(doc, dict):
        _hcl_json_lookups(file, doc, out)
    template = isinstance(doc, dict) and any(
        k in doc for k in ("Resources", "AWSTemplateFormatVersion", "Transform")
    )
    for path, value, line in _strings(doc):
        # CloudFormation: name the section and logical id (Resources.Web, Parameters.Ami)
        address = ".".join(path[:2]) if template else ".".join(path) or "(document)"
        out.scan_value(value, Where(file, line, address))
    return out


def _hcl_json_lookups(file: str, doc: dict[str, Any], out: Findings) -> None:
    """Terraform / Packer in JSON syntax (``.tf.json``, ``.pkr.json``): ``data.aws_ami``,
    ``data.amazon-ami`` and ``source.<type>.<name>.source_ami_filter``."""
    data = doc.get("data")
    for kind, source in (
        ("aws_ami", 'data "aws_ami"'),
        ("aws_ami_ids", 'data "aws_ami_ids"'),
        ("amazon-ami", 'data "amazon-ami"'),
    ):
        blocks = data.get(kind) if isinstance(data, dict) else None
        for name, body in blocks.items() if isinstance(blocks, dict) else ():
            for b in body if isinstance(body, list) else [body]:
                if isinstance(b, dict):
                    where = Where(file, _line(b), f"data.{kind}.{name}")
                    out.floating.append(lookup(dict(b), where, source))
    sources = doc.get("source")
    for kind, named in sources.items() if isinstance(sources, dict) else ():
        for name, body in named.items() if isinstance(named, dict) else ():
            f = body.get("source_ami_filter") if isinstance(body, dict) else None
            for one in f if isinstance(f, list) else [f]:
                if isinstance(one, dict):
                    where = Where(file, _line(body), f"source.{kind}.{name}")
                    out.floating.append(lookup(dict(one), where, "source_ami_filter"))


def read_state(file: str, text: str) -> Findings:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IacError(
            file, exc.lineno, f"not a Terraform state file (bad JSON): {exc.msg}"
        ) from None
    except RecursionError:
        raise IacError(file, None, "nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resources", []), list):
        raise IacError(file, None, "not a Terraform state file: no `resources` list")
    out = Findings(files=1)
    for r in doc.get("resources", []):
        if not isinstance(r, dict):
            raise IacError(file, None, "not a Terraform state file: a resource is not an object")
        base = ".".join(
            p
            for p in (
                r.get("module"),
                "data" if r.get("mode") == "data" else None,
                r.get("type"),
                r.get("name"),
            )
            if isinstance(p, str) and p
        )
        for inst in r.get("instances") or []:
            if not isinstance(inst, dict):
                continue
            key = inst.get("index_key")
            address = base + (f"[{json.dumps(key)}]" if key is not None else "")
            for path, value, _ in _strings(inst.get("attributes") or {}):
                where = Where(file, None, f"{address} ({'.'.join(path[:1]) or 'attributes'})")
                out.scan_value(value, where)
    if "outputs" in doc:
        for path, value, _ in _strings(doc.get("outputs") or {}):
            out.scan_value(value, Where(file, None, f"output.{path[0] if path else '?'}"))
    return out
