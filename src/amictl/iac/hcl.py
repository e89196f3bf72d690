"""Terraform (``.tf``, ``.tfvars``) and Packer (``.pkr.hcl``) files, parsed with
python-hcl2 (a Lark grammar of HCL2).

Every string the parser produced (quoted strings, template parts, heredocs) is searched
for image ids and SSM parameter names, with the line the parser gives it; the lookups
(``data "aws_ami"``, Packer's ``source_ami_filter`` and ``data "amazon-ami"``) are read
from the parsed blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .findings import Findings, IacError, Where
from .floating import lookup

if TYPE_CHECKING:
    from lark import Tree

# python-hcl2 and Lark are imported when a file is read, not with amictl: every other
# command starts without them.
OPTIONS = {
    "with_comments": False,
    "explicit_blocks": False,
    "strip_string_quotes": True,
    "preserve_heredocs": False,
}
# (block type, first label) of the image lookups, and where the lookup is in its body
# (``aws_ami_ids`` lists every match: any of them can be used, so it keeps them all)
LOOKUPS = {
    ("data", "aws_ami"): 'data "aws_ami"',
    ("data", "aws_ami_ids"): 'data "aws_ami_ids"',
    ("data", "amazon-ami"): 'data "amazon-ami"',
}


def _labels(block: Tree) -> tuple[str, list[str]]:
    from lark import Token, Tree

    kind = ""
    labels: list[str] = []
    for child in block.children:
        if isinstance(child, Tree) and child.data == "identifier" and not kind:
            kind = str(child.children[0])
        elif isinstance(child, Tree) and child.data == "string":
            labels.append(
                "".join(
                    str(t)
                    for t in child.scan_values(lambda v: isinstance(v, Token))
                    if str(t) != '"'
                )
            )
        elif isinstance(child, Tree) and child.data == "body":
            break
    return kind, labels


def _address(kind: str, labels: list[str]) -> str:
    if kind == "resource":
        return ".".join(labels)
    if kind == "variable":
        return "var." + ".".join(labels)
    return ".".join([kind, *labels]) if labels else kind


def read_hcl(file: str, text: str) -> Findings:
    import hcl2
    from lark import Token, Tree
    from lark.exceptions import LarkError, UnexpectedInput

    try:
        tree = hcl2.parses_to_tree(text)
    except UnexpectedInput as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IacError(
            file, exc.line if exc.line and exc.line > 0 else None, f"not valid HCL: {first}"
        ) from None
    except (LarkError, ValueError, RuntimeError) as exc:
        raise IacError(file, None, f"not valid HCL: {exc}") from None
    out = Findings(files=1)
    body = tree.children[0] if tree.children and isinstance(tree.children[0], Tree) else tree
    blocks: list[tuple[str, list[str], int | None]] = []
    for node in body.children if isinstance(body, Tree) else []:
        if not isinstance(node, Tree):
            continue
        if node.data == "block":
            kind, labels = _labels(node)
            address = _address(kind, labels)
            blocks.append((kind, labels, getattr(node.meta, "line", None)))
        elif node.data == "attribute":
            address = str(node.children[0].children[0]) if node.children else "?"
        else:
            continue
        for tok in node.scan_values(lambda v: isinstance(v, Token)):
            out.scan_value(str(tok), Where(file, tok.line, address))
    if not any((k, (lb or [""])[0]) in LOOKUPS or k == "source" for k, lb, _ in blocks):
        return out
    try:
        data: dict[str, Any] = hcl2.serialize(
            hcl2.transform(tree), serialization_options=hcl2.SerializationOptions(**OPTIONS)
        )
    except Exception as exc:  # noqa: BLE001 - the parser's own failure, reported as bad input
        raise IacError(file, None, f"not valid HCL: {exc}") from None
    seen: dict[str, int] = {}
    for kind, labels, line in blocks:
        i = seen.get(kind, 0)
        seen[kind] = i + 1
        entries = data.get(kind)
        if not isinstance(entries, list) or i >= len(entries):
            continue
        blk = _body(entries[i], labels)
        if blk is None:
            continue
        where = Where(file, line, _address(kind, labels))
        source = LOOKUPS.get((kind, (labels or [""])[0]))
        if source is not None:
            out.floating.append(lookup(blk, where, source))
        elif kind == "source":
            filters = blk.get("source_ami_filter")
            for f in filters if isinstance(filters, list) else [filters] if filters else []:
                if isinstance(f, dict):
                    out.floating.append(lookup(f, where, "source_ami_filter"))
    return out


def _body(entry: Any, labels: list[str]) -> dict[str, Any] | None:
    """The body of one serialized block (``{label: {label: body}}``)."""
    for label in labels:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(label, entry.get(f'"{label}"'))
    return entry if isinstance(entry, dict) else None
