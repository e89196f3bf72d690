# How tests/data/plan_issue30_*.json were made, on main before issue 30 (a5df47a):
# .venv/bin/python tests/data/make_plan_issue30.py (from the repository root).
import datetime as dt, sys, json
sys.path.insert(0, "bench")
import plan as B
from amictl.model import Reference
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_io import streamed_checksum, write_plan
inv = B.build(60, 90, 20, seed=3)
for k, im in enumerate(inv.images):
    im.tags["family"] = ("ci-7" if k % 3 == 0 else "app-9")
inv.images[0].tags["family"] = "ci-caf\u00e9-\"q\"\\x"
inv.images[1].tags["owner"] = "\u65e5\u672c \t tab"
inv.images[2].tags["legal-hold"] = "yes \u2713"
inv.references.append(Reference("instance", "i-\u00e9", "run\u00e9 \"quoted\" \n nl", inv.images[3].image_id, inv.images[3].account, inv.images[3].region))
pol = parse_policy_text(B.POLICY, "bench-policy.yaml")
now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
p = plan(inv, pol, now)
open("tests/data/plan_issue30_to_json.json", "w").write(p.to_json())
write_plan(p, "tests/data/plan_issue30_streamed.json", {"checksum": streamed_checksum(p)})
print(len(p.actions), len(p.decisions), p.checksum, streamed_checksum(p))
print(sorted(set(a.type for a in p.actions)))
