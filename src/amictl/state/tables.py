"""The state store's tables (SQLAlchemy Core metadata): the current schema.

SCHEMA CHANGES: stores are brought to this schema by Alembic revisions in
``amictl/state/migrations/versions/`` (run by ``state/schema.py`` when a store is opened, or
by ``amictl state migrate``), never by ``create_all``. A change that adds a table or a column
here also adds the next revision file (``python -m amictl.state.migrations revision "add
bakes"`` writes it from the difference; review it), see docs/contributing.md.
tests/test_team_state.py fails while the metadata and the revisions disagree.

Its own module so that the store, its locks and its schema checks all read the tables
from here, and none of them imports another to get at them.
"""

from __future__ import annotations

import sqlalchemy as sa

meta = sa.MetaData()

runs = sa.Table(
    "inventory_runs",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scanned_at", sa.String(32), nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("accounts", sa.Text, nullable=False),
    sa.Column("regions", sa.Text, nullable=False),
    sa.Column("images", sa.Integer, nullable=False),
    sa.Column("snapshots", sa.Integer, nullable=False),
    sa.Column("references", sa.Integer, nullable=False),
    sa.Column("api_calls", sa.Text, nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

slices = sa.Table(
    "inventory_slices",
    meta,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("inventory_runs.id"), nullable=False, index=True),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("items", sa.Integer, nullable=False),
    sa.Column("error_code", sa.String(80)),
    sa.Column("error", sa.Text),
)

journal = sa.Table(
    "journal",
    meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("plan_checksum", sa.String(64), nullable=False, index=True),
    sa.Column("action_id", sa.String(32), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # FINAL and UNSETTLED below
    sa.Column("error_code", sa.String(80)),
    sa.Column("message", sa.Text),
    sa.Column("caller", sa.String(256)),
    # revision 0007: a hash chain per plan (``amictl.state.chain``): the previous row's hash of
    # the same plan, and this row's (over that and its own content); ``state verify`` checks it
    sa.Column("prev_hash", sa.String(64)),
    sa.Column("row_hash", sa.String(64)),
)

plans = sa.Table(
    "plans",
    meta,
    sa.Column("checksum", sa.String(64), primary_key=True),
    sa.Column("stored_at", sa.String(32), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
)

# One row per apply run: its plan, the limits it was given (so --resume keeps them). Written
# once (revision 0007: the app role may only INSERT); how it ended is a row of apply_run_ends.
apply_runs = sa.Table(
    "apply_runs",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan_checksum", sa.String(64), nullable=False, index=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("ended_at", sa.String(32)),
    # "running" when written; since revision 0007 never updated (the end is in apply_run_ends)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
    # revision 0007: the plan's own signature as apply checked it (None: unsigned), and the
    # store key's HMAC of (checksum, options): --resume trusts the options only when it checks
    sa.Column("plan_signature", sa.String(80)),
    sa.Column("limits_signature", sa.String(80)),
)

# How an apply run ended (revision 0007): appended, never updated. finished | interrupted |
# journal-error | store-lost, and the hash of the plan's last journal row then (``state
# verify`` finds it in the chain, so a deleted tail or a plan's rows all deleted is seen).
apply_run_ends = sa.Table(
    "apply_run_ends",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False, index=True),
    sa.Column("ended_at", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("journal_head", sa.String(64)),
)
# Tables the app role may only read and append to (revision 0007 revokes UPDATE and DELETE
# on PostgreSQL); ``alembic_version`` it may only read.
APPEND_ONLY = ("journal", "plans", "apply_runs", "apply_run_ends")

# The snapshots an image had when apply's re-check read it just before deregistering it:
# the proof, after the image is gone, that a snapshot was that image's.
snapshot_origins = sa.Table(
    "snapshot_origins",
    meta,
    sa.Column("plan_checksum", sa.String(64), nullable=False, index=True),
    sa.Column("image_id", sa.String(32), nullable=False),
    sa.Column("snapshots", sa.Text, nullable=False),
)

# Secrets of this store. Up to revision 0005 it held the plan-signing key, which every role
# reading rows could read; 0005 moved it to ``plan_signing_keys``.
secrets_table = sa.Table(
    "secrets",
    meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

# The key that signs the plans this store makes (HMAC-SHA256; revision 0005). A table of its
# own: on PostgreSQL the migration revokes it from every role but its owner, and only a signer
# role is granted it (docs/team.md), so the app role, which reads every other table, cannot
# sign a plan. ``AMICTL_PLAN_KEY`` (hex) replaces it for every backend.
plan_signing_keys = sa.Table(
    "plan_signing_keys",
    meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)
PLAN_KEY_ENV = "AMICTL_PLAN_KEY"
PLAN_KEY_NAME = "plan-key"

# One row per bake (amictl.creation.bake): how it went, and the process that ran it, so that
# `bake --cleanup` can tell a killed bake from a running one.
bakes = sa.Table(
    "bakes",
    meta,
    sa.Column("bake_id", sa.String(40), primary_key=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("ended_at", sa.String(32)),
    # running | succeeded | failed | interrupted | skipped | cleaned
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("family", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.String(64)),
    sa.Column("image_id", sa.String(32)),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
)

# Every instance a bake launched (builder, test), written as soon as RunInstances answers.
bake_instances = sa.Table(
    "bake_instances",
    meta,
    sa.Column("bake_id", sa.String(40), nullable=False, index=True),
    sa.Column("instance_id", sa.String(32), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # builder | test
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("launched_at", sa.String(32), nullable=False),
    sa.Column("terminated_at", sa.String(32)),
)

# Statuses after which an action is over for its plan: never run again by that plan.
FINAL = ("done", "skipped", "failed", "not-found")
# Statuses of an action whose call may be in AWS's hands or was cut short: a resume looks
# at AWS first. "intended" (written before the call; alone after a kill) and "stopped" (a
# stop ended the call before AWS did it: aws/stopping.py).
UNSETTLED = ("intended", "stopped")

locks = sa.Table(
    "locks",
    meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("acquired_at", sa.String(32), nullable=False),
    sa.Column("caller", sa.String(512)),  # revision 0002
)

# Launch permissions read live (issue 14): reused by later plans up to a max age (24 h by
# default, --refresh to ignore). Apply never trusts them: it re-reads every image live.
launch_permissions = sa.Table(
    "launch_permissions",
    meta,
    sa.Column("account", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("image_id", sa.String(32), primary_key=True),
    sa.Column("read_at", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # JSON: {"public": bool, "targets": [...]}
)


# Launch-template versions (issue 22): immutable once created, so a re-scan reads only the
# templates whose latest version number moved, from the version after ``read_through``.
# A cached version only ever adds a reference (keeps an image): one deleted since still keeps.
lt_templates = sa.Table(
    "lt_templates",
    meta,
    sa.Column("account", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("template_id", sa.String(64), primary_key=True),
    sa.Column("read_through", sa.Integer, nullable=False),  # every version <= it was read
    sa.Column("read_at", sa.String(32), nullable=False),
)
lt_versions = sa.Table(
    "lt_versions",
    meta,
    sa.Column("account", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("template_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("image_id", sa.Text),  # the version's ImageId (an ami-, a resolve:ssm: alias, none)
)
