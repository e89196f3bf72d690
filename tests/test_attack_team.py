"""Attacks on the team state store: garbage URLs, lock takeover races."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.errors import SafetyError, StateError
from amictl.state import locks
from amictl.state.store import Store
from amictl.state.store import locks as locks_table

pytest_plugins = ["pg"]  # the pg_server and state_url fixtures

GARBAGE = [
    "postgresql://u@h:abc/db",  # a port that is not a number
    "postgresql://u@[::1/db",  # an unclosed IPv6 bracket
    "postgresql+asyncpg://u@h/db",  # a driver amictl does not ship
    "postgresql+pg8000://u@h/db",
]


@pytest.mark.parametrize("url", GARBAGE)
@pytest.mark.parametrize("args", [["state", "info"], ["state", "migrate"], ["journal"]])
def test_garbage_state_urls_are_a_clear_error_not_a_traceback(url, args):
    res = CliRunner().invoke(cli, [*args, "--state", url])
    assert isinstance(res.exception, StateError), repr(res.exception)
    assert res.exception.exit_code == (2 if "://u@h:" in url or "[" in url else 1)  # bad input
    assert "int()" not in res.exception.message
    assert "state store" in res.exception.message


def test_an_unparseable_url_keeps_its_password_hidden():
    res = CliRunner().invoke(cli, ["journal", "--state", "postgresql://u:s3cret@h:abc/db"])
    assert isinstance(res.exception, StateError)
    assert "s3cret" not in res.exception.message and "u:***@h:abc" in res.exception.message


def test_sqlite_bad_query_parameter_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db?timeout=abc"
    with pytest.raises(StateError, match="state store"):
        Store(url)


def test_sqlite_two_takers_of_a_dead_holders_lock_never_both_get_it(tmp_path, monkeypatch):
    """A holder on this host died; two applies take its lock over at once. Both read the
    stale row; the first updates it to its own pid; the second's update then matches no row
    and must be refused, not run alongside the first."""
    url = f"sqlite:///{tmp_path}/state.db"
    store = Store(url)
    key = "123456789012/us-east-1"
    dead = 999_999_9
    with store.engine.begin() as c:
        c.execute(
            locks_table.insert().values(
                key=key,
                owner="apply dead",
                pid=dead,
                host=locks.hostname(),
                acquired_at="2026-01-01T00:00:00Z",
            )
        )
    first_pid = os.getppid()  # a live process: the other taker, which won the race

    def racing_pid_alive(pid: int) -> bool:
        # between our read of the row and our update, the other taker takes it over
        with store.engine.begin() as c:
            c.execute(
                locks_table.update()
                .where(locks_table.c.key == key)
                .where(locks_table.c.pid == dead)
                .values(owner="apply first", pid=first_pid)
            )
        return False  # the pid we read is dead

    monkeypatch.setattr(locks, "pid_alive", racing_pid_alive)
    with (
        pytest.raises(SafetyError, match="apply first"),
        store.lock([key], owner="apply second"),
    ):
        pytest.fail("two applies hold the same lock")
    # the winner's row is intact
    with store.engine.connect() as c:
        row = c.execute(locks_table.select()).first()
    assert row is not None and row.owner == "apply first" and row.pid == first_pid


def test_a_state_url_naming_some_other_file_does_not_advise_moving_it(tmp_path):
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n" * 50)
    with pytest.raises(StateError) as exc:
        Store(f"sqlite:///{other}")
    assert "check --state" in (exc.value.hint or "").split(";")[0]
    assert "only if it really is amictl's" in (exc.value.hint or "")
    assert other.read_text().startswith("root:x")  # unchanged


def test_a_multi_account_apply_can_take_its_locks(state_url, monkeypatch):
    """An apply over many accounts names every caller ARN in its lock rows: on PostgreSQL
    (which enforces column lengths, SQLite does not) that must not fail the lock, and a long
    AMICTL_HOSTNAME must not either."""
    monkeypatch.setenv("AMICTL_HOSTNAME", "gha-" + "x" * 300)
    store = Store(state_url)
    callers = ", ".join(
        f"arn:aws:sts::{100000000000 + i}:assumed-role/amictl-apply-role/gha-run-12345678-attempt-1"
        for i in range(12)
    )
    keys = [f"{100000000000 + i}/us-east-1" for i in range(12)]
    with store.lock(keys, owner="apply aaaa", caller=callers):
        rows = locks.holders(store)
        assert {r["key"] for r in rows} == set(keys)
        assert all(r["held"] for r in rows)
        assert all(r["caller"].startswith("arn:aws:sts::100000000000:") for r in rows)
        run = store.start_apply_run("c" * 64, {})
        store.end_apply_run(run, "finished")
    assert locks.holders(store) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:///db?host=127.0.0.1&port=1&password=s3cret",
        "postgresql://u@127.0.0.1:1/db?sslmode=disable&password=s3cret",
        "postgresql://u@127.0.0.1:abc/db?password=s3cret",  # unparseable too
    ],
)
def test_a_password_in_the_query_string_is_hidden_too(url):
    res = CliRunner().invoke(cli, ["journal", "--state", url])
    assert isinstance(res.exception, StateError), repr(res.exception)
    assert "s3cret" not in res.exception.message and "password=***" in res.exception.message
    res = CliRunner().invoke(cli, ["state", "info", "--state", url])
    assert "s3cret" not in res.output + str(getattr(res.exception, "message", ""))
