"""How tests/data/plan_issue30_*.json were made: with main's code before issue 30 (commit
a5df47a; its ``write_plan(plan, path, extra)``), from the repository root:

    git archive a5df47a src | tar -x -C /tmp/old && \\
        PYTHONPATH=/tmp/old/src .venv/bin/python tests/data/make_plan_issue30.py

Kept as the record of those files; tests/test_plan_io.py checks that they still verify.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from amictl.model import Reference
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_io import streamed_checksum, write_plan

sys.path.insert(0, "bench")
import plan as bench  # noqa: E402 - bench/plan.py's synthetic inventory

inv = bench.build(60, 90, 20, seed=3)
for k, im in enumerate(inv.images):
    im.tags["family"] = "ci-7" if k % 3 == 0 else "app-9"
inv.images[0].tags["family"] = 'ci-caf\u00e9-"q"\\x'
inv.images[1].tags["owner"] = "\u65e5\u672c \t tab"
inv.images[2].tags["legal-hold"] = "yes \u2713"
img = inv.images[3]
inv.references.append(
    Reference(
        "instance", "i-\u00e9", 'run\u00e9 "quoted" \n nl', img.image_id, img.account, img.region
    )
)
policy = parse_policy_text(bench.POLICY, "bench-policy.yaml")
p = plan(inv, policy, dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
Path("tests/data/plan_issue30_to_json.json").write_text(p.to_json())
extra = {"checksum": streamed_checksum(p)}
write_plan(p, "tests/data/plan_issue30_streamed.json", extra)  # type: ignore[arg-type]
print(len(p.actions), len(p.decisions), p.checksum)
