"""The plan-signing key (issue 23 item 8): out of the rows the app role reads.

On PostgreSQL, set up as docs/team.md says (owner, app role, signer role), the app role can
neither read the key nor sign with it, the signer can; on SQLite (the default) signing and
verifying work as before; ``AMICTL_PLAN_KEY`` replaces the stored key; a key an older amictl
stored in ``secrets`` is moved by the migration and still checks its plans.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from amictl.errors import SigningKeyUnavailable
from amictl.policy.plan_model import Plan
from amictl.state import schema
from amictl.state.store import PLAN_KEY_ENV, Store, plan_signing_keys, secrets_table

pytest_plugins = ["pg"]  # the pg_server fixture

CHECKSUM = "c" * 64


def _doc_sql(section: str) -> list[str]:
    """The ```sql blocks of a section of docs/team.md, in order."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "team.md").read_text()
    part = text.split(section, 1)[1].split("\n## ", 1)[0]
    return [b.split("```", 1)[0] for b in part.split("```sql\n")[1:]]


def _run(dsn: str, sql: str) -> None:
    """Each statement; a role that exists already (roles are per server, and another test
    of the session may have made the documented ones) is left as it is."""
    import psycopg

    with psycopg.connect(dsn) as c:
        c.autocommit = True
        for stmt in filter(str.strip, sql.split(";")):
            try:
                c.execute(stmt)
            except psycopg.errors.DuplicateObject:
                if "CREATE ROLE" not in stmt:
                    raise


def _migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    with sa.create_engine(url).begin() as c:
        cfg = Config()
        cfg.set_main_option("script_location", str(schema.MIGRATIONS))
        cfg.attributes["connection"] = c
        command.upgrade(cfg, "head")


def test_sqlite_default_signs_and_verifies(tmp_path, monkeypatch):
    monkeypatch.delenv(PLAN_KEY_ENV, raising=False)
    url = f"sqlite:///{tmp_path}/state.db"
    key = Store(url).plan_key()
    assert len(key) == 32 and Store(url).plan_key() == key  # made once, kept
    body = {"checksum": CHECKSUM, "signature": Plan.signature_of(CHECKSUM, key)}
    assert Plan.signed_by(body, Store(url).plan_key())
    assert not Plan.signed_by({**body, "checksum": "d" * 64}, key)
    with Store(url).engine.connect() as c:  # in its own table, not among the other secrets
        assert c.execute(sa.select(sa.func.count()).select_from(secrets_table)).scalar() == 0
        assert c.execute(sa.select(plan_signing_keys.c.name)).scalars().all() == ["plan-key"]


def test_the_environment_key_replaces_the_stored_one(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/state.db"
    monkeypatch.setenv(PLAN_KEY_ENV, "ab" * 32)
    assert Store(url).plan_key() == bytes.fromhex("ab" * 32)
    with Store(url).engine.connect() as c:  # nothing stored
        assert c.execute(sa.select(plan_signing_keys.c.name)).scalars().all() == []
    for bad in ("ab" * 8, "not hex at all"):
        monkeypatch.setenv(PLAN_KEY_ENV, bad)
        with pytest.raises(SigningKeyUnavailable, match="at least 64 hex digits"):
            Store(url).plan_key()
        assert Store(url).plan_key_or_none()[0] is None


def test_a_key_stored_by_an_older_amictl_is_moved_and_still_checks(tmp_path, monkeypatch):
    from alembic import command
    from alembic.config import Config

    monkeypatch.delenv(PLAN_KEY_ENV, raising=False)
    url = f"sqlite:///{tmp_path}/old.db"
    Store(url)
    with sa.create_engine(url).begin() as c:
        cfg = Config()
        cfg.set_main_option("script_location", str(schema.MIGRATIONS))
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "0005")
        c.execute(secrets_table.insert().values(name="plan-key", value="cd" * 32))
    key = Store(url).plan_key()  # upgraded on open (SQLite)
    assert key == bytes.fromhex("cd" * 32)
    with Store(url).engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(secrets_table)).scalar() == 0


def test_postgresql_app_role_cannot_read_the_key_the_signer_can(pg_server, monkeypatch):

    monkeypatch.delenv(PLAN_KEY_ENV, raising=False)
    setup, grants = _doc_sql("## The PostgreSQL database and its roles")[:2]
    signer_setup, signer_grants = _doc_sql("## The plan-signing key")
    db = f"sign_{os.getpid()}"
    base = f"host=127.0.0.1 port={pg_server.port}"
    admin = f"{base} user=amictl password=secret dbname=postgres"
    at = f"@127.0.0.1:{pg_server.port}/{db}"
    owner = f"postgresql+psycopg://amictl_owner:change-me-owner{at}"
    app = f"postgresql+psycopg://amictl_app:change-me-app{at}"
    signer = f"postgresql+psycopg://amictl_signer:change-me-signer{at}"
    try:
        _run(admin, setup.replace("DATABASE amictl ", f"DATABASE {db} "))
        _run(f"{base} user=amictl_owner password=change-me-owner dbname={db}", grants)
        _migrate(owner)
        _run(admin, signer_setup)
        _run(f"{base} user=amictl_owner password=change-me-owner dbname={db}", signer_grants)
        _check_roles(base, db, app, signer)
    finally:  # leave the server as found: the roles are the server's, not the database's
        _cleanup(admin, db)


def _cleanup(admin: str, db: str) -> None:
    import psycopg

    with psycopg.connect(admin) as c:
        c.autocommit = True
        c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        for role in ("amictl_signer", "amictl_app", "amictl_owner"):
            # a role still owning another test's database stays: that test made it
            with contextlib.suppress(psycopg.Error):
                c.execute(f"DROP ROLE IF EXISTS {role}")


def _check_roles(base: str, db: str, app: str, signer: str) -> None:
    import psycopg

    key = Store(signer).plan_key()  # the signer makes it and reads it
    assert len(key) == 32 and Store(signer).plan_key() == key
    sig = Plan.signature_of(CHECKSUM, key)
    assert Plan.signed_by({"checksum": CHECKSUM, "signature": sig}, Store(signer).plan_key())

    # the app role: reads rows of every other table, but not this one
    store = Store(app)
    with pytest.raises(SigningKeyUnavailable, match="may not read the plan-signing key") as exc:
        store.plan_key()
    assert exc.value.hint and "amictl_signer" in exc.value.hint
    assert store.plan_key_or_none()[0] is None
    with psycopg.connect(f"{base} user=amictl_app password=change-me-app dbname={db}") as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT value FROM plan_signing_keys").fetchall()
        c.rollback()
        assert c.execute("SELECT count(*) FROM secrets").fetchone() == (0,)  # not there either
        c.execute("SELECT count(*) FROM journal").fetchone()  # rows it does read
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("INSERT INTO plan_signing_keys VALUES ('plan-key2', 'x')")
    counts = schema.row_counts(Store(app).engine)  # `state info` as the app role still works
    assert "journal" in counts and "plan_signing_keys" not in counts
    assert "plan_signing_keys" in schema.row_counts(Store(signer).engine)


def test_team_docs_are_for_operators_and_contributing_for_developers():
    docs = Path(__file__).resolve().parents[1] / "docs"
    team = (docs / "team.md").read_text()
    contributing = (docs / "contributing.md").read_text()
    for moved in ("## Tests", "### For developers", "python -m amictl.state.migrations"):
        assert moved.lower() not in team.lower(), moved
    assert "## Adding a schema change" in contributing and "## Tests" in contributing
    assert "tests/pg.py" in contributing
    assert "docs/contributing.md" in team  # the operator is pointed there
    assert "## The plan-signing key" in team and "amictl_signer" in team
