"""Which module registers each top-level command, and its one-line help (issue 30).

``amictl --help`` lists every command without importing any of them, and ``amictl plan``
imports only the plan's module (``cli/lazy.py``). This table is checked against the
commands the modules really register, help line included, by tests/test_cli_lazy.py
(which prints the table to paste when a command is added or its help changes).
"""

from __future__ import annotations

# command name -> (module under amictl.cli, its short help as `--help` lists it)
COMMANDS: dict[str, tuple[str, str]] = {
    "allowed-images": (
        "governance_cmd",
        "Allowed AMIs: which images the account may discover and launch (per region).",
    ),
    "apply": (
        "apply_cmd",
        "Execute a reviewed plan (or plan then apply after confirmation), journaled and re-checked.",
    ),
    "approval-config": (
        "approvals_cmd",
        "Show or set the team's approval thresholds (kept in the state store).",
    ),
    "approvals": (
        "approvals_cmd",
        "The plan's approvals, whether apply will accept it, and who may approve.",
    ),
    "approve": (
        "approvals_cmd",
        "Approve a plan: records your STS identity against the plan's checksum.",
    ),
    "audit": (
        "audit_cmd",
        "Security and compliance findings, each with a severity and a fix hint.",
    ),
    "bake": ("bake_cmd", "Build, test and promote a new version of a family from RECIPE."),
    "catalog": (
        "catalog_cmd",
        "Public base images: the named bases amictl knows, and finding their newest image.",
    ),
    "channels": (
        "channels_cmd",
        "Release channels: `channels [FAMILY]` lists them, `channels history FAMILY` shows every value a channel took.",
    ),
    "copy": (
        "distribute_cmd",
        "Copy an image into other regions: same name, its tags, lineage tags, tagged snapshots.",
    ),
    "cost": (
        "cost_cmd",
        "Monthly snapshot storage cost per family, region, account, image or tier.",
    ),
    "create": (
        "create_cmd",
        "Create a new version of an image family (from an instance or from snapshots).",
    ),
    "deprecate": (
        "single_cmd",
        "Deprecate one image now, or --at a later time (a one-action plan: live re-check, journal).",
    ),
    "demo": (
        "demo",
        "Start a private sandbox, seed the demo fleet and walk through the lifecycle.",
    ),
    "disable": (
        "single_cmd",
        "Disable one image (a one-action plan: live re-check, journal); refused when kept.",
    ),
    "drift": (
        "rollout_cmd",
        "Instances, Auto Scaling groups and launch-template versions behind their channel.",
    ),
    "explain": (
        "plan_cmd",
        "Why the image is kept or retired: the governing rule and every reason.",
    ),
    "iam-policy": (
        "apply_cmd",
        "The least-privilege IAM policy for the given commands (generated from the registries), or for a persona (--persona builder|releaser|consumer|retirer|auditor).",
    ),
    "inventory": (
        "inventory_cmd",
        "Scan images, snapshots and references; print counts per region and completeness; store the run.",
    ),
    "journal": ("apply_cmd", "What apply did, when, by whom (caller identity), and the result."),
    "launch": (
        "distribute_cmd",
        "Run instances from exactly one image, tagged with its family, version and id.",
    ),
    "lineage": (
        "governance_cmd",
        "The images AMI was made from, back to the root, with each one's state now.",
    ),
    "lint": ("lint_cmd", "Check owned images against the naming and tagging conventions."),
    "ls": (
        "inventory_cmd",
        "List owned images: id, name, family, version, age, state, size, cost, references, sharing.",
    ),
    "notify": (
        "notify_cmd",
        "Send each owner one digest of what PLAN does to their images and when each stage falls due, with the command that opts an image out.",
    ),
    "plan": (
        "plan_cmd",
        "Compute the plan (changes nothing): actions by family, reasons, savings; -o json for the exact JSON.",
    ),
    "policy": ("plan_cmd", "Lifecycle policies: validate a file, print the JSON Schema."),
    "promote": (
        "channels_cmd",
        "Point channel C of FAMILY at VERSION in every region (SSM /amictl/channels/FAMILY/C).",
    ),
    "recipe": ("bake_cmd", "Bake recipes: validate a file, print the JSON Schema."),
    "recycle-bin": (
        "recyclebin_cmd",
        "Recycle Bin: make deregistered AMIs and deleted snapshots recoverable, and recover them.",
    ),
    "refs": ("inventory_cmd", "What uses the image: one row per reference (kind, id, detail)."),
    "report": (
        "report_cmd",
        "Write one self-contained HTML report (works offline: no CDN, no network).",
    ),
    "restore": (
        "retain_cmd",
        "Restore an image stored to S3 (CreateRestoreImageTask) in the first region.",
    ),
    "retain": (
        "retain_cmd",
        "Put the policy's `retain` rules in place: lock the snapshots of each version a rule names (governance or compliance mode), or store the image to S3.",
    ),
    "retire": (
        "single_cmd",
        "Deregister one image (a one-action plan: live re-check, journal); refused when kept.",
    ),
    "revoke": ("revoke_cmd", "Revoke FAMILY@VERSION (or an AMI) and every image derived from it."),
    "rollback": (
        "channels_cmd",
        "Set channel C of FAMILY one release back (or back to --to VERSION).",
    ),
    "rollout": (
        "rollout_cmd",
        "Roll channel C of FAMILY out to the Auto Scaling groups that follow it.",
    ),
    "sandbox": (
        "sandbox_cmd",
        "The local EC2-compatible endpoint (moto + the amictl layer) for demos and tests.",
    ),
    "share": (
        "distribute_cmd",
        "Let accounts, an organization, an OU or (with --public --yes) everyone launch an image.",
    ),
    "sharing": (
        "distribute_cmd",
        "Who can launch what: accounts, organizations/OUs and public, per shared image.",
    ),
    "show": ("inventory_cmd", "Everything about one image: its snapshots, references and lineage."),
    "snapshots": ("inventory_cmd", "Owned snapshots and the images using them."),
    "stale": (
        "bake_cmd",
        "Families whose newest version is older than --days, whose base has a newer image upstream, and images in channels whose parent was deprecated or retired.",
    ),
    "state": (
        "state_cmd",
        "The state store (SQLite by default, PostgreSQL for teams): its schema and contents.",
    ),
    "tag": (
        "single_cmd",
        "Tag an image and its snapshots (keys in the amictl: namespace are refused).",
    ),
    "unrevoke": (
        "revoke_cmd",
        "Undo a revocation (the newest, or REVOKE_ID) exactly, from its journal.",
    ),
    "unshare": (
        "distribute_cmd",
        "Remove launch permissions (and the accounts' createVolumePermission on its snapshots).",
    ),
    "usage": (
        "governance_cmd",
        "Which other accounts run instances or keep launch templates of your images.",
    ),
    "versions": (
        "channels_cmd",
        "Every owned version of FAMILY across the scanned regions, oldest first.",
    ),
}
