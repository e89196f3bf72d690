"""Build library objects (connector, store) from the global options."""

from __future__ import annotations

import os

import sqlalchemy as sa

from ..aws.session import AwsConfig, Connector
from ..errors import InputError
from ..sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox
from ..state.store import Store
from .common import settings


def connector() -> Connector:
    s = settings()
    cfg = AwsConfig(
        profile=s.profile,
        regions=list(s.regions),
        endpoint_url=s.endpoint_url,
        role_arns=list(s.role_arns),
        accounts_file=s.accounts_file,
    )
    if s.sandbox:
        home = os.environ.get("AMICTL_SANDBOX_HOME")
        sb = Sandbox(home) if home else Sandbox()
        cfg.endpoint_url = sb.endpoint
        cfg.access_key, cfg.secret_key = SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
        cfg.profile = None
    conn = Connector(cfg)
    if s.org:
        from ..aws.org import discover_role_arns

        found = discover_role_arns(conn.client("organizations", "us-east-1"), s.org)
        conn.role_arns = list(dict.fromkeys([*conn.role_arns, *found]))
    return conn


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
