"""Sessions, clients and accounts.

Every client uses botocore's ``adaptive`` retry mode (assembled by :mod:`.stopping`, so a
stop ends its waits) and an amictl user agent, and
counts its calls per operation (botocore events) so that benchmarks and ``-v``
can print them. Other accounts are reached by STS AssumeRole.
"""

from __future__ import annotations

import difflib
import functools
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore
import botocore.exceptions
import botocore.session
from botocore.config import Config

from .. import __version__
from ..errors import AwsError, InputError
from ..memory import gc_paused
from ..yamlpos import load_file
from . import fastparse, model_files, shared_parts, stopping

DEFAULT_REGION = "us-east-1"

HINTS = {
    "AccessDenied": "grant the permission to the caller (see `amictl iam-policy`), or leave this region/account out",
    "AccessDeniedException": "grant the permission to the caller (see `amictl iam-policy`)",
    "UnauthorizedOperation": "grant the permission to the caller (see `amictl iam-policy`), or leave this region out",
    "AuthFailure": "check the credentials and that the region is enabled for the account",
    "OptInRequired": "the region is not enabled for this account: enable it or leave it out",
    "RequestLimitExceeded": "AWS throttled us even after adaptive retries: retry later or scan fewer regions at once",
    "Throttling": "AWS throttled us even after adaptive retries: retry later or scan fewer regions at once",
    "ThrottlingException": "AWS throttled us even after adaptive retries: retry later",
    "InternalError": "an AWS server error persisted after retries: retry later",
    "ServiceUnavailable": "the service is unavailable in this region: retry later",
    "ExpiredToken": "the credentials expired: refresh them (aws sso login, new session token)",
    "InvalidClientTokenId": "the access key is not valid for this endpoint/account",
}


def aws_error(exc: BaseException, operation: str = "", region: str = "") -> AwsError:
    """Turn a botocore failure into an AwsError that names the code and what to do."""
    where = f" in {region}" if region else ""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        msg = exc.response.get("Error", {}).get("Message", str(exc))
        op = operation or exc.operation_name
        return AwsError(
            f"{op}{where}: {code}: {msg}",
            code=code,
            operation=op,
            region=region,
            hint=HINTS.get(code),
        )
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectionClosedError,
    ):
        return AwsError(
            f"{operation}{where}: endpoint unreachable: {exc}",
            code="EndpointUnreachable",
            operation=operation,
            region=region,
            hint="the region or endpoint is down or unreachable: check the network / --endpoint-url",
        )
    if isinstance(
        exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return AwsError(
            "no AWS credentials found",
            code="NoCredentials",
            operation=operation,
            region=region,
            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use --sandbox",
        )
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return AwsError(
            f"{operation}{where}: {exc}",
            code=type(exc).__name__,
            operation=operation,
            region=region,
        )
    return AwsError(
        f"{operation}{where}: {type(exc).__name__}: {exc}",
        code=type(exc).__name__,
        operation=operation,
        region=region,
    )


@functools.cache
def known_regions(partitions: tuple[str, ...] = ()) -> frozenset[str]:
    """Every region botocore knows EC2 in, opt-in regions included (all partitions by default).

    Read through the process's shared loader: endpoints.json and EC2's model (its
    endpoint prefix) are then parsed once, for this and for every client (a loader of its
    own parsed them twice: a fifth of a second at every start)."""
    sess = botocore.session.get_session()
    _share_loader(sess)
    parts = partitions or tuple(sess.get_available_partitions())
    return frozenset(
        r for part in parts for r in sess.get_available_regions("ec2", partition_name=part)
    )


def region_problem(name: object, known: Iterable[str]) -> tuple[str, str] | None:
    """None if ``name`` is one of ``known``, else (message, hint) saying what to use instead."""
    known = sorted(known)
    if isinstance(name, str) and name in known:
        return None
    text = str(name)
    shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    guess = text.strip().lower().replace("_", "-").replace(" ", "-")
    if guess == "all":
        close = ["all"]
    elif guess in known:
        close = [guess]
    else:
        close = difflib.get_close_matches(guess, known, n=3, cutoff=0.8)
    lister = "`aws ec2 describe-regions --all-regions` lists them"
    if close:
        hint = f"did you mean {' or '.join(close)}? ({lister})"
    else:
        hint = (
            f"region names look like us-east-1; {lister}. A region newer than this "
            f"botocore ({botocore.__version__}) needs a newer boto3"
        )
    return f"unknown region {shown}", hint


def check_regions(regions: Iterable[str], key: str = "--region") -> None:
    """Raise InputError (exit 2) for the first name that is not a region botocore knows or ``all``."""
    known = known_regions()
    for name in regions:
        if name == "all":
            continue
        problem = region_problem(name, known)
        if problem:
            raise InputError(problem[0], key=key, hint=problem[1])


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    if isinstance(exc, AwsError):
        return exc.code
    return type(exc).__name__


@dataclass
class AwsConfig:
    profile: str | None = None
    regions: list[str] = field(default_factory=list)
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    role_arns: list[str] = field(default_factory=list)
    accounts_file: str | None = None
    max_attempts: int = 8
    max_pool: int = 32
    read_timeout: int = 60
    connect_timeout: int = 10
    # pages parsed before are not parsed again (aws.pagememo): for commands whose output
    # apply never trusts (plan, inventory), never for apply's live view
    page_memo: str | None = None


@dataclass(frozen=True)
class Target:
    """One account and region to work in."""

    account: str
    region: str
    role_arn: str | None = None


class CallCounter:
    """API calls per 'service.Operation' (retries not counted), thread safe."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_call(self, model: Any = None, **_kw: Any) -> None:
        if model is not None:
            with self._lock:
                self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))


def load_accounts_file(path: str) -> list[str]:
    """An accounts file lists role ARNs: ``accounts: [{role_arn: ...}, ...]`` (YAML or JSON).

    Each must be an IAM role ARN of a 12-digit account (exit 2 naming file:line otherwise:
    an ARN AssumeRole cannot take would leave that account out of a scan that says it is
    complete)."""
    data, pos = load_file(path)
    key = "accounts" if isinstance(data, dict) else None
    items = data.get("accounts") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise pos.error(
            (key,) if key else (), "expected `accounts:` with a list of {role_arn: ...}"
        )
    arns = []
    for i, item in enumerate(items):
        where: tuple[Any, ...] = (*((key,) if key else ()), i)
        arn = item.get("role_arn") if isinstance(item, dict) else item
        if isinstance(item, dict):
            where = (*where, "role_arn")
        if not isinstance(arn, str) or not _ROLE_ACCOUNT_RE.match(arn.strip()):
            raise pos.error(
                where,
                f"expected an IAM role ARN of a 12-digit account "
                f"(arn:aws:iam::123456789012:role/NAME), got {arn!r}",
            )
        arns.append(arn.strip())
    return arns


_ROLE_ACCOUNT_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/")
ARN_ACCOUNT_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):")  # any IAM ARN's account
_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def _botocore_session(
    profile: str | None = None,
    key: str | None = None,
    secret: str | None = None,
    token: str | None = None,
) -> botocore.session.Session:
    """A botocore session as ``boto3.Session(profile_name=..., aws_access_key_id=...)``
    makes one (boto3's own adds resources and S3 transfers, which amictl does not use; not
    importing it saves a third of a second at every start). A profile that does not exist
    is an AwsError here (botocore's ProfileNotFound, as boto3's session raises it), not at
    the first call."""
    try:
        sess = botocore.session.Session(profile=profile)
        if key:
            sess.set_credentials(key, secret, token)
        sess.get_scoped_config()
    except botocore.exceptions.ProfileNotFound as exc:
        raise AwsError(
            str(exc), code="ProfileNotFound", hint="check --profile / AWS_PROFILE"
        ) from None
    return sess


def _share_loader(session: Any) -> None:
    """One loader of service models per process: each botocore session (one per account
    assumed, one per connector) would otherwise read and parse the EC2 model, megabytes of
    JSON, again; with 40 accounts that was most of a scan's CPU."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = session.get_component("data_loader")
            model_files.use_dicts(_LOADER)  # its files decoded at C speed (0.1 s a start)
        else:
            session.register_component("data_loader", _LOADER)


def _memoize_client_methods() -> None:
    """botocore builds a client's class, one Python function per operation (EC2: ~750),
    for every client it makes: with a client per account, region and service, 40 accounts
    spent seconds of CPU there. The functions depend on the service model alone (they call
    ``self._make_api_call``), so they are built once per service and API version and the
    class attributes copied (the ``creating-client-class`` handlers may add to them)."""
    from botocore.client import ClientCreator

    if getattr(ClientCreator, "_amictl_memo", False):
        return
    orig = ClientCreator._create_methods
    memo: dict[tuple[str, str], dict[str, Any]] = {}
    lock = threading.Lock()

    def _create_methods(self: Any, service_model: Any) -> dict[str, Any]:
        key = (service_model.service_name, service_model.api_version)
        with lock:
            got = memo.get(key)
        if got is None:
            got = orig(self, service_model)
            with lock:
                memo[key] = got
        return dict(got)

    ClientCreator._create_methods = _create_methods  # type: ignore[method-assign]
    ClientCreator._amictl_memo = True  # type: ignore[attr-defined]


_memoize_client_methods()
shared_parts.install()


class Connector:
    """Makes clients for (account, region, service); remembers sessions per account."""

    def __init__(self, config: AwsConfig) -> None:
        self.config = config
        self.counter = CallCounter()
        self.base = _botocore_session(
            profile=config.profile, key=config.access_key, secret=config.secret_key
        )
        self.region_name: str | None = self.base.get_config_variable("region")
        _share_loader(self.base)  # before check_regions: its files are the clients' ones
        # unknown region names are bad input (exit 2), not an error row per region later;
        # the first check parses botocore's endpoints and EC2's model (no garbage to collect)
        with gc_paused():
            check_regions(config.regions)
            if not self._explicit_regions() and self.region_name:
                check_regions([self.region_name], key="region of the profile / AWS_DEFAULT_REGION")
        self.botocore_config = Config(
            retries={"mode": "standard", "max_attempts": config.max_attempts},
            user_agent_extra=f"amictl/{__version__}",
            max_pool_connections=config.max_pool,
            read_timeout=config.read_timeout,
            connect_timeout=config.connect_timeout,
        )
        self.page_memo = fastparse.page_memo(Path(config.page_memo)) if config.page_memo else None
        fastparse.install(self.base, self.page_memo)
        self._sessions: dict[str | None, botocore.session.Session] = {None: self.base}
        self._clients: dict[tuple[str | None, str, str], Any] = {}
        self._making: dict[tuple[str | None, str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self._identity: dict[str, str] | None = None
        arns = list(config.role_arns)
        if config.accounts_file:
            arns += load_accounts_file(config.accounts_file)
        self.role_arns = arns

    def _session(self, role_arn: str | None) -> botocore.session.Session:
        with self._lock:
            if role_arn in self._sessions:
                return self._sessions[role_arn]
        sts = self.client("sts", DEFAULT_REGION)
        try:
            creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=f"amictl-{__version__}")[
                "Credentials"
            ]
        except Exception as exc:  # noqa: BLE001
            raise aws_error(exc, "AssumeRole") from None
        sess = _botocore_session(  # the base session's profile (its config), not AWS_PROFILE's
            profile=self.config.profile,
            key=creds["AccessKeyId"],
            secret=creds["SecretAccessKey"],
            token=creds["SessionToken"],
        )
        _share_loader(sess)
        fastparse.install(sess, self.page_memo)
        with self._lock:
            self._sessions[role_arn] = sess
        return sess

    def client(
        self,
        service: str,
        region: str,
        role_arn: str | None = None,
        max_attempts: int | None = None,
    ) -> Any:
        """A client with adaptive retries; ``max_attempts`` lowers them for advisory calls."""
        key = (role_arn, region, service if max_attempts is None else f"{service}#{max_attempts}")
        with self._lock:
            c = self._clients.get(key)
            making = self._making.setdefault(key, threading.Lock()) if c is None else None
        if c is not None:
            return c
        assert making is not None
        with making:  # threads asking for the same client at once: one makes it
            with self._lock:
                c = self._clients.get(key)
            if c is not None:
                return c
            sess = self._session(role_arn) if role_arn else self.base
            cfg = self.botocore_config
            if max_attempts is not None:
                cfg = cfg.merge(Config(retries={"mode": "standard", "max_attempts": max_attempts}))
            with gc_paused():  # botocore's models and clients: many objects, no garbage
                c = sess.create_client(
                    service, region_name=region, endpoint_url=self.config.endpoint_url, config=cfg
                )
                stopping.install(c)  # adaptive mode, from botocore's parts
            c.meta.events.register("before-call.*.*", self.counter.on_call)
            with self._lock:
                self._clients[key] = c
        return c

    def _explicit_regions(self) -> list[str]:
        return [r for r in self.config.regions if r != "all"]

    def role_for(self, account: str) -> str | None:
        """The role given (--role-arn, --accounts-file, --org) for ``account``, if any."""
        for arn in self.role_arns:
            m = ARN_ACCOUNT_RE.match(arn)
            if m and m.group(1) == account:
                return arn
        return None

    def home_region(self) -> str:
        explicit = self._explicit_regions()
        if explicit:
            return explicit[0]
        return self.region_name or DEFAULT_REGION

    def identity(self, role_arn: str | None = None) -> dict[str, str]:
        try:
            ident = self.client("sts", self.home_region(), role_arn).get_caller_identity()
        except Exception as exc:  # noqa: BLE001
            raise aws_error(exc, "GetCallerIdentity") from None
        return {"account": ident["Account"], "arn": ident["Arn"], "user_id": ident["UserId"]}

    def regions(self, role_arn: str | None = None) -> list[str]:
        wanted = self.config.regions
        if wanted and "all" not in wanted:
            return list(dict.fromkeys(wanted))
        if not wanted:
            return [self.home_region()]
        return self.enabled_regions(role_arn)

    def enabled_regions(self, role_arn: str | None = None) -> list[str]:
        """Every region enabled for the account (DescribeRegions), whatever ``--region``
        says: where copies and children of an image may be (single-image commands)."""
        ec2 = self.client("ec2", self.home_region(), role_arn)
        try:
            resp = ec2.describe_regions(AllRegions=False)
        except Exception as exc:  # noqa: BLE001
            raise aws_error(exc, "DescribeRegions", self.home_region()) from None
        return sorted(
            r["RegionName"]
            for r in resp["Regions"]
            if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in"
        )

    def targets(self) -> list[Target]:
        """Every (account, region) to work in: the caller's own, or each assumed role's."""
        out: list[Target] = []
        roles: list[str | None] = list(self.role_arns) if self.role_arns else [None]
        for role in roles:
            # an IAM role's ARN names its account: no AssumeRole + GetCallerIdentity round
            # trips one account after the other here (40 accounts: seconds) — the role is
            # assumed when its first client is made, in the scan's workers
            m = _ROLE_ACCOUNT_RE.match(role or "")
            account = m.group(1) if m else self.identity(role)["account"]
            for region in self.regions(role):
                out.append(Target(account, region, role))
        return out
