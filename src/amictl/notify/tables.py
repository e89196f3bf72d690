"""The notices' journal (a MetaData of this package; revision 0007 creates it)."""

from __future__ import annotations

import sqlalchemy as sa

meta = sa.MetaData()

# One row per image per notice attempt: who was told, about what, when, how, the result.
notices = sa.Table(
    "notices",
    meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("plan_checksum", sa.String(64), nullable=False, index=True),
    sa.Column("image_id", sa.String(32), nullable=False, index=True),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(256)),
    sa.Column("channel", sa.String(16)),
    sa.Column("target", sa.String(512)),  # the topic ARN, the address, or the contact's name
    sa.Column("what", sa.Text),
    sa.Column("result", sa.String(16), nullable=False),  # delivered | failed | no-contact
    sa.Column("error", sa.Text),
)
