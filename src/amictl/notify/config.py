"""The notices' one configuration file: where an image's owner comes from, and how each
owner is reached (webhook, SNS topic, SES email). Secrets (webhook URLs) are read from the
environment by name or from the file, never printed and never written to plans."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..model import Image
from ..yamlpos import Positions, loads, read_text

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
KEYS = ("owner_tag", "default_contact", "from", "contacts", "retries")
CHANNELS = ("webhook", "sns", "email")


@dataclass(frozen=True)
class Contact:
    """How one owner is reached. ``secret``: the webhook URL (never shown)."""

    name: str
    channel: str  # webhook | sns | email
    target: str  # what may be shown: "webhook", the topic ARN, the address
    secret: str | None = field(default=None, repr=False)

    def shown(self) -> str:
        return f"{self.channel}:{self.target}"


@dataclass
class NotifyConfig:
    path: str = "<none>"
    owner_tag: str = "owner"
    default_contact: str | None = None
    sender: str | None = None  # SES From address
    contacts: dict[str, Contact] = field(default_factory=dict)
    retries: int = 3

    def contact(self, owner: str) -> Contact | None:
        """The contact of ``owner``: listed, else an email address reached by SES."""
        if owner in self.contacts:
            return self.contacts[owner]
        if EMAIL_RE.match(owner):
            return Contact(owner, "email", owner)
        return None


def owner_of(
    img: Image, config: NotifyConfig, family_owners: dict[str, str]
) -> tuple[str | None, str]:
    """(owner, where it came from): the owner tag, else the family's owner in the
    conventions file, else the account's default contact."""
    tagged = img.tags.get(config.owner_tag)
    if tagged:
        return tagged, f"tag {config.owner_tag}"
    if img.family:
        for glob, who in family_owners.items():
            if fnmatch.fnmatchcase(img.family, glob):
                return who, f"family {img.family} (conventions)"
    if config.default_contact:
        return config.default_contact, "the account's default contact"
    return None, "no owner tag, family owner or default contact"


def _contact(name: str, raw: Any, pos: Positions) -> Contact:
    path = ("contacts", name)
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in CHANNELS:
        raise pos.error(
            path, "a contact is one of {webhook: ...}, {sns: TOPIC-ARN}, {email: ADDRESS}"
        )
    channel, value = next(iter(raw.items()))
    if channel == "webhook":
        if isinstance(value, dict) and set(value) == {"url_env"}:
            url = os.environ.get(str(value["url_env"]))
            if not url:
                raise pos.error((*path, "webhook", "url_env"), f"${value['url_env']} is not set")
        elif isinstance(value, dict) and set(value) == {"url"}:
            url = str(value["url"])
        else:
            raise pos.error((*path, "webhook"), "expected {url: URL} or {url_env: VARIABLE}")
        if not url.startswith(("https://", "http://")):
            raise pos.error((*path, "webhook"), "the webhook URL is not http(s)")
        return Contact(name, "webhook", name, secret=url)
    if not isinstance(value, str) or not value:
        raise pos.error((*path, channel), "expected a string")
    if channel == "sns" and not value.startswith("arn:aws:sns:"):
        raise pos.error(
            (*path, "sns"), "expected an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
        )
    if channel == "email" and not EMAIL_RE.match(value):
        raise pos.error((*path, "email"), "expected an email address")
    return Contact(name, channel, value)


def load_config(path: str) -> NotifyConfig:
    data, pos = loads(read_text(path, "notify configuration"), path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise pos.error((), "expected a mapping", hint="keys: " + ", ".join(KEYS))
    for k in data:
        if k not in KEYS:
            raise pos.error((k,), "unknown key", hint="allowed: " + ", ".join(KEYS))
    cfg = NotifyConfig(path=path)
    for key, attr in (
        ("owner_tag", "owner_tag"),
        ("default_contact", "default_contact"),
        ("from", "sender"),
    ):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise pos.error((key,), "expected a non-empty string")
            setattr(cfg, attr, data[key])
    if "retries" in data:
        if not isinstance(data["retries"], int) or not 0 <= data["retries"] <= 10:
            raise pos.error(("retries",), "expected a whole number from 0 to 10")
        cfg.retries = data["retries"]
    contacts = data.get("contacts") or {}
    if not isinstance(contacts, dict):
        raise pos.error(("contacts",), "expected a mapping of owner to contact")
    for name, raw in contacts.items():
        cfg.contacts[str(name)] = _contact(str(name), raw, pos)
    if any(c.channel == "email" for c in cfg.contacts.values()) and not cfg.sender:
        raise pos.error(("from",), "email contacts need a `from` address (verified in SES)")
    return cfg


def no_config() -> InputError:
    return InputError(
        "give --notify-config FILE (owners' contacts and channels)", key="--notify-config"
    )
