"""Build library objects (connector, store) from the global options."""

from __future__ import annotations

import os

import sqlalchemy as sa

from ..aws.session import AwsConfig, Connector
from ..errors import InputError
from ..paths import state_dir
from ..sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox
from ..state.store import Store
from .common import info, settings


def connector(page_memo: bool = False) -> Connector:
    """``page_memo``: pages parsed before are not parsed again (aws.pagememo); only for
    commands whose output apply never trusts (plan, inventory)."""
    s = settings()
    cfg = AwsConfig(
        profile=s.profile,
        regions=list(s.regions),
        endpoint_url=s.endpoint_url,
        role_arns=list(s.role_arns),
        accounts_file=s.accounts_file,
        page_memo=str(state_dir() / "pages") if page_memo else None,
    )
    if s.sandbox:
        home = os.environ.get("AMICTL_SANDBOX_HOME")
        sb = Sandbox(home) if home else Sandbox()
        cfg.endpoint_url = sb.endpoint
        cfg.access_key, cfg.secret_key = SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
        cfg.profile = None
    conn = Connector(cfg)
    ORG_SKIPPED.clear()
    if s.org:
        from ..aws.org import discover

        found, skipped = discover(conn.client("organizations", "us-east-1"), s.org)
        conn.role_arns = list(dict.fromkeys([*conn.role_arns, *found]))
        ORG_SKIPPED.extend(skipped)
        for a in skipped:
            name = f" ({a['name']})" if a["name"] else ""
            info(
                f"skipped: account {a['id']}{name} is {a['status']}: --org reads ACTIVE "
                "accounts only"
            )
    return conn


ORG_SKIPPED: list[dict[str, str]] = []
"""The organization's accounts --org left out (not ACTIVE) in this run: ``{id, name,
status}``; said on stderr, and in ``inventory -o json`` as ``skipped_accounts``."""


def store() -> Store:
    url = settings().state
    if url is not None and url.strip().startswith("sqlite:") and in_memory(url):
        raise InputError(
            f"{url} names no database file, so plans, the journal and the locks "
            "would be lost when amictl exits",
            key="--state",
            hint="give a file: sqlite:////path/to/state.db (or leave --state out for the default)",
        )
    return Store(url)


def in_memory(url: str) -> bool:
    """A SQLite URL without a file (``sqlite://``, ``sqlite:///``, ``:memory:``)."""
    try:
        database = sa.make_url(url.strip()).database
    except sa.exc.ArgumentError:
        return False  # the store names what is wrong with it
    return (database or "") in ("", ":memory:") or "mode=memory" in url
