"""Shared fixtures: one private sandbox per test session; each test works in its own account."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from amictl.aws.session import AwsConfig, Connector
from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox

# Test speed: every process the suite starts (the xdist workers, each worker's sandbox server,
# the CLI subprocesses) imports amictl's ~45k lines; where PYTHONDONTWRITEBYTECODE is set (CI
# images often set it) each one compiled them all again, ~0.7 s of CPU a process. Let the
# first process cache the bytecode and the others reuse it. Loaded before xdist starts the
# workers, so they and their children inherit it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

_accounts = itertools.count(100000000001 + (os.getpid() % 1000) * 1000000)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path_factory.mktemp("sandbox"))
    sb.up()
    yield sb
    sb.down()


class Env:
    """A test's own account in the shared sandbox, reached by AssumeRole like a real one."""

    def __init__(self, sandbox: Sandbox, account: str) -> None:
        self.sandbox = sandbox
        self.account = account
        self.role_arn = f"arn:aws:iam::{account}:role/amictl-test"
        self._creds: dict[str, str] | None = None

    def load(self, text: str) -> dict[str, Any]:
        body = f"account: '{self.account}'\n" + text
        return self.sandbox.load_text(body, "<test fleet>")

    def connector(self, regions: list[str] | None = None, **kw: Any) -> Connector:
        return Connector(
            AwsConfig(
                endpoint_url=self.sandbox.endpoint,
                access_key=SANDBOX_ACCESS_KEY,
                secret_key=SANDBOX_SECRET_KEY,
                role_arns=[self.role_arn],
                regions=regions or ["us-east-1"],
                **kw,
            )
        )

    def creds(self) -> dict[str, str]:
        if self._creds is None:
            sts = boto3.client(
                "sts",
                endpoint_url=self.sandbox.endpoint,
                region_name="us-east-1",
                aws_access_key_id=SANDBOX_ACCESS_KEY,
                aws_secret_access_key=SANDBOX_SECRET_KEY,
            )
            c = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="amictl-test")["Credentials"]
            self._creds = {
                "aws_access_key_id": c["AccessKeyId"],
                "aws_secret_access_key": c["SecretAccessKey"],
                "aws_session_token": c["SessionToken"],
            }
        return self._creds

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(
            service, endpoint_url=self.sandbox.endpoint, region_name=region, **self.creds()
        )

    def cli_args(self) -> list[str]:
        return ["--endpoint-url", self.sandbox.endpoint, "--role-arn", self.role_arn]

    def cli_env(self, tmp_path: Any) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": SANDBOX_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SANDBOX_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AMICTL_STATE": f"sqlite:///{tmp_path}/state.db",
            "XDG_STATE_HOME": str(tmp_path),
        }


@pytest.fixture
def env(sandbox: Sandbox) -> Env:
    return Env(sandbox, str(next(_accounts)))
