"""The two JSON texts of a plan's action or decision, made in one pass: its canonical
text (keys sorted, no spaces: what the checksum hashes) and its line in the plan file
(``json.dumps`` of its ``to_dict()``).

Encoding each item's dict twice, once per form, was most of the time a 100,000-image
plan took to write (bench/plan.py): every key and string escaped twice. Here each string
is escaped once (``json``'s own ``encode_basestring_ascii``, the function its encoder
calls) and both texts are put together from the pieces, in ``to_dict``'s key order and in
sorted order. The texts are exactly those of the encoders (tests/test_plan_text.py checks
arbitrary actions and decisions against them); an item with a value of another type than
``to_dict`` gives (a number that is not an int, a reason that is not a string) returns
None, and the writer encodes its dict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .plan_model import Action, Decision

_esc: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _no_default(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _encoders() -> tuple[Callable[[Any], str], Callable[[Any], str]]:
    """(canonical, line) encoders of a value: the C encoder called directly when there is
    one (no encoder object, no circular-reference markers: a plan's dicts have no cycles)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        canon = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        line = json.JSONEncoder()
        return canon.encode, line.encode
    c = make(None, _no_default, _esc, None, ":", ",", True, False, True)
    ln = make(None, _no_default, _esc, None, ": ", ", ", False, False, True)
    return (lambda v: "".join(c(v, 0))), (lambda v: "".join(ln(v, 0)))


CANON, LINE = _encoders()


def action_texts(a: Action) -> tuple[str, str] | None:
    """``(CANON(a.to_dict()), LINE(a.to_dict()))``, or None (see the module)."""
    try:
        acc, typ, reg, aid, rule = (
            _esc(a.account),
            _esc(a.type),
            _esc(a.region),
            _esc(a.id),
            _esc(a.rule),
        )
        reasons = [_esc(r) for r in a.reasons]  # TypeError: not a string
        img = _esc(a.image_id) if a.image_id else None
        snap = _esc(a.snapshot_id) if a.snapshot_id else None
        after = [_esc(x) for x in a.after] if a.after else None
        fam = _esc(a.family) if a.family else None
    except TypeError:
        return None
    size = a.size_gib
    if size and type(size) is not int:
        return None
    expect = dict(a.expect) if a.expect else None
    # canonical: account, after, expect, family, id, image_id, reasons, region, rule,
    # size_gib, snapshot_id, type, unsafe
    c = [f'{{"account":{acc}']
    if after is not None:
        c.append(f',"after":[{",".join(after)}]')
    if expect is not None:
        c.append(f',"expect":{CANON(expect)}')
    if fam is not None:
        c.append(f',"family":{fam}')
    c.append(f',"id":{aid}')
    if img is not None:
        c.append(f',"image_id":{img}')
    c.append(f',"reasons":[{",".join(reasons)}],"region":{reg},"rule":{rule}')
    if size:
        c.append(f',"size_gib":{int.__repr__(size)}')
    if snap is not None:
        c.append(f',"snapshot_id":{snap}')
    c.append(f',"type":{typ}')
    c.append(',"unsafe":true}' if a.unsafe else "}")
    # the file: to_dict's order
    f = [f'{{"id": {aid}, "type": {typ}, "account": {acc}, "region": {reg}']
    if img is not None:
        f.append(f', "image_id": {img}')
    if snap is not None:
        f.append(f', "snapshot_id": {snap}')
    f.append(f', "rule": {rule}')
    if after is not None:
        f.append(f', "after": [{", ".join(after)}]')
    f.append(f', "reasons": [{", ".join(reasons)}]')
    if size:
        f.append(f', "size_gib": {int.__repr__(size)}')
    if a.unsafe:
        f.append(', "unsafe": true')
    if fam is not None:
        f.append(f', "family": {fam}')
    if expect is not None:
        f.append(f', "expect": {LINE(expect)}')
    f.append("}")
    return "".join(c), "".join(f)


def decision_texts(d: Decision) -> tuple[str, str] | None:
    """``(CANON(d.to_dict()), LINE(d.to_dict()))``, or None (see the module)."""
    try:
        img, reg, acc, verdict = _esc(d.image_id), _esc(d.region), _esc(d.account), _esc(d.verdict)
        rule = "null" if d.rule is None else _esc(d.rule)
        reasons = [_esc(r) for r in d.reasons]
        fam = _esc(d.family) if d.family else None
        ver = None if fam is None else "null" if d.version is None else _esc(d.version)
    except TypeError:
        return None
    rs = ",".join(reasons)
    if fam is None:
        canon = (
            f'{{"account":{acc},"image_id":{img},"reasons":[{rs}],"region":{reg},'
            f'"rule":{rule},"verdict":{verdict}}}'
        )
        tail = "}"
    else:
        canon = (
            f'{{"account":{acc},"family":{fam},"image_id":{img},"reasons":[{rs}],'
            f'"region":{reg},"rule":{rule},"verdict":{verdict},"version":{ver}}}'
        )
        tail = f', "family": {fam}, "version": {ver}}}'
    line = (
        f'{{"image_id": {img}, "region": {reg}, "account": {acc}, "verdict": {verdict}, '
        f'"rule": {rule}, "reasons": [{", ".join(reasons)}]{tail}'
    )
    return canon, line


def item_texts(x: Any) -> tuple[str, str]:
    """Both texts of any plan item (an action, a decision, or another ``to_dict()``-able)."""
    t = action_texts(x) if type(x) is Action else decision_texts(x) if type(x) is Decision else None
    if t is not None:
        return t
    d = x.to_dict()
    return CANON(d), LINE(d)
