"""What the code references, as inventory references of kind ``iac``.

- a literal image id: the image, where the inventory has it;
- an SSM parameter name (``resolve:ssm:NAME``, or a value equal to a parameter's name, such
  as a channel's ``/amictl/channels/<family>/<channel>``): whatever the inventory's
  ``ssm-parameter`` / ``channel`` references of that name point at, in every region that
  has it (the code's own provider region is not read) — the code follows it;
- a lookup: the images :mod:`amictl.iac.floating` says it keeps.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from ..model import Inventory, Reference
from .findings import Findings
from .floating import evaluate

IAC_KIND = "iac"
PARAMETER_KINDS = ("ssm-parameter", "channel")


def references(
    found: Findings, inv: Inventory, now: dt.datetime
) -> tuple[list[Reference], list[str]]:
    """The references the findings make in ``inv``, and the warnings (lookups amictl
    could not evaluate wholly)."""
    out: list[Reference] = []
    warnings: list[str] = []
    for lit in found.literals:
        img = inv.by_id.get(lit.image_id)
        if img is not None:
            w = lit.where
            out.append(
                Reference(
                    IAC_KIND,
                    w.loc,
                    f"{w.loc} {w.address}: {lit.image_id}",
                    img.image_id,
                    img.account,
                    img.region,
                )
            )
    by_name: dict[str, list[Reference]] = defaultdict(list)
    for r in inv.references:
        if r.kind in PARAMETER_KINDS:
            by_name[r.id].append(r)
    for par in found.parameters:
        w = par.where
        for r in by_name.get(par.name, []):
            what = "channel" if r.kind == "channel" else "SSM parameter"
            out.append(
                Reference(
                    IAC_KIND,
                    w.loc,
                    f"{w.loc} {w.address}: follows {what} {par.name} ({r.region})",
                    r.image_id,
                    r.account,
                    r.region,
                )
            )
    owned = [i for i in inv.images if i.owned]
    for f in found.floating:
        kept, unsupported, how = evaluate(f, owned, now)
        w = f.where
        if unsupported:
            warnings.append(
                f"{w.loc} {w.address}: {f.source} could not be evaluated wholly "
                f"({', '.join(unsupported)}): it keeps every image the rest of it matches "
                f"({len(kept)})"
            )
        for img in kept:
            out.append(
                Reference(
                    IAC_KIND,
                    w.loc,
                    f"{w.loc} {w.address}: {f.source} keeps {how}",
                    img.image_id,
                    img.account,
                    img.region,
                )
            )
    return out, warnings
