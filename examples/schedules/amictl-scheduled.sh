#!/usr/bin/env bash
# amictl on a schedule (cron, CI): one step per call, amictl's exit code passed through, and a
# JSON summary of each step in $OUT for the scheduler, a chat hook or the next job.
#
#   amictl-scheduled.sh plan          inventory -> plan --out $OUT/plan.json (changes nothing)
#   amictl-scheduled.sh apply PLAN    apply a REVIEWED plan file (--yes: the review was the
#                                     confirmation); the policy requires Recycle Bin, so
#                                     unrecoverable deletions are refused (exit 3)
#   amictl-scheduled.sh resume        finish an interrupted apply (any host, shared state)
#
# Environment:
#   AMICTL_STATE        the team's state store, e.g. postgresql://amictl@db.internal/amictl
#                       (password in PGPASSWORD or ~/.pgpass; docs/team.md)
#   AMICTL_POLICY       the lifecycle policy (default: cleanup-policy.yaml next to this script)
#   OUT                 where summaries and the plan go (default: ./amictl-out)
#   AMICTL              the amictl executable (default: amictl on PATH)
#   AMICTL_ARGS         extra global options, e.g. "--region us-east-1,eu-west-1 --role-arn ..."
#   AMICTL_APPLY_ARGS   extra apply options, e.g. "--max-age 72h" (a plan older than 24 h is
#                       refused by default)
#
# Exit codes (amictl's): 0 ok | 1 error | 2 bad input | 3 refused by a safety check (a held
# lock, no Recycle Bin, blast radius, stale or unsigned plan): a person must look |
# 4 partial failure (see `amictl journal`) | 130/143 interrupted: run `resume` (or re-run).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AMICTL=${AMICTL:-amictl}
POLICY=${AMICTL_POLICY:-$here/cleanup-policy.yaml}
OUT=${OUT:-./amictl-out}
read -r -a ARGS <<<"${AMICTL_ARGS:-}"
read -r -a APPLY_ARGS <<<"${AMICTL_APPLY_ARGS:-}"
mkdir -p "$OUT"

meaning() {
  case "$1" in
    0) echo ok ;; 1) echo error ;; 2) echo bad-input ;; 3) echo refused ;;
    4) echo partial-failure ;; 130 | 143) echo interrupted ;; *) echo unknown ;;
  esac
}

# status STEP RC: $OUT/status.json, what a scheduler or alert reads first
status() {
  printf '{"step": "%s", "exit": %d, "meaning": "%s", "at": "%s"}\n' \
    "$1" "$2" "$(meaning "$2")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$OUT/status.json"
  echo "amictl $1: exit $2 ($(meaning "$2"))" >&2
  return "$2"
}

step=${1:-}
case "$step" in
  plan)
    "$AMICTL" inventory --no-progress -o json "${ARGS[@]}" >"$OUT/inventory.json" ||
      { status inventory $?; exit; }
    # with --out, stdout gets {out, checksum, summary}; the plan itself is in plan.json
    "$AMICTL" plan -p "$POLICY" --from-state --out "$OUT/plan.json" -o json "${ARGS[@]}" \
      >"$OUT/plan-out.json" || { status plan $?; exit; }
    # the part a reviewer reads first: how many actions of which kind, and the checksum
    python3 - "$OUT" <<'PY' || { status plan-summary 1; exit; }
import json, sys
out = sys.argv[1]
plan = json.load(open(f"{out}/plan.json"))
json.dump(
    {
        "checksum": plan["checksum"],
        "created_at": plan["created_at"],
        "actions": len(plan["actions"]),
        "by_type": plan["summary"],
        "inventory_complete": plan["inventory"]["complete"],
        "warnings": plan.get("warnings", []),
    },
    open(f"{out}/plan-summary.json", "w"),
    indent=2,
)
PY
    status plan 0
    ;;
  apply)
    plan=${2:?usage: amictl-scheduled.sh apply PLAN.json}
    "$AMICTL" apply "$plan" --yes --no-progress -o json "${APPLY_ARGS[@]}" "${ARGS[@]}" \
      >"$OUT/apply-summary.json"
    status apply $?
    ;;
  resume)
    "$AMICTL" apply --resume --yes --no-progress -o json "${ARGS[@]}" >"$OUT/resume-summary.json"
    status resume $?
    ;;
  *)
    echo "usage: amictl-scheduled.sh plan | apply PLAN.json | resume" >&2
    exit 2
    ;;
esac
