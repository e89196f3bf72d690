"""AWS Organizations for the multi-account sandbox: an organization whose members are the
sandbox's accounts, so ``amictl --org`` discovers them with ``ListAccounts``.

moto has Organizations (CreateOrganization, CreateAccount, ListAccounts with pagination),
but CreateAccount makes random account ids, while the sandbox's accounts are the ones fleet
files seed (``account:``). The control API ``POST /_amictl/org`` defines an organization
with given member ids instead::

    {"management": "123456789012",
     "accounts": ["111111111111", {"id": "222222222222", "name": "prod", "status": "SUSPENDED"}]}

It creates the organization in the management account (when it has none) and each member
as moto's own ``FakeAccount`` (so ListAccounts, DescribeAccount, ListParents answer as moto
does: https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html,
members ACTIVE unless given another status, the management account listed too), with
the given id, and the ``OrganizationAccountAccessRole`` moto creates for a new member.
Members already there are left as they are; ``"reset": true`` removes the others first.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from unittest import mock

ACCOUNT_RE = re.compile(r"^\d{12}$")
STATUSES = {"ACTIVE", "SUSPENDED", "PENDING_CLOSURE"}


def define(data: dict[str, Any]) -> dict[str, Any]:
    """Create (or extend) the management account's organization; return its member list."""
    from moto.organizations import utils
    from moto.organizations.models import organizations_backends

    management = str(data.get("management", "123456789012"))
    if not ACCOUNT_RE.match(management):
        raise ValueError("management: an account id is 12 digits")
    members: list[dict[str, str]] = []
    for i, item in enumerate(data.get("accounts") or []):
        entry = {"id": item} if isinstance(item, str) else dict(item)
        acct_id = str(entry.get("id", ""))
        if not ACCOUNT_RE.match(acct_id):
            raise ValueError(f"accounts[{i}]: an account id is 12 digits")
        status = str(entry.get("status", "ACTIVE"))
        if status not in STATUSES:
            raise ValueError(f"accounts[{i}].status: one of {', '.join(sorted(STATUSES))}")
        members.append(
            {"id": acct_id, "name": str(entry.get("name", f"member-{acct_id}")), "status": status}
        )
    backend = organizations_backends[management]["aws"]
    if backend.org is None:
        backend.create_organization(region="us-east-1", FeatureSet="ALL")
    wanted = {m["id"] for m in members} | {management}
    if data.get("reset"):
        backend.accounts = [a for a in backend.accounts if a.id in wanted]
    have = {a.id: a for a in backend.accounts}
    base = max((a.create_time for a in backend.accounts), default=dt.datetime.now(dt.UTC))
    for n, m in enumerate(members, start=1):
        acct: Any = have.get(m["id"])
        if acct is None:
            with mock.patch.object(utils, "make_random_account_id", return_value=m["id"]):
                backend.create_account(AccountName=m["name"], Email=f"{m['id']}@example.com")
            acct = backend.get_account_by_id(m["id"])
            # moto pages ListAccounts on JoinedTimestamp: one distinct time per member
            acct.create_time = base + dt.timedelta(milliseconds=n)
        acct.name = m["name"]
        acct.status = m["status"]
    return {
        "management": management,
        "accounts": [
            {"id": a.id, "name": a.name, "status": a.status}
            for a in sorted(backend.accounts, key=lambda a: a.create_time)
        ],
    }
