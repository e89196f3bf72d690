"""Delivering one digest to one contact: a webhook (JSON with a Slack-compatible ``text``),
an SNS topic, or an email through SES. Retries: urllib3's for the webhook, botocore's
adaptive retries for SNS and SES."""

from __future__ import annotations

import json
from typing import Any

import urllib3
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.util.retry import Retry

from ..aws.session import Connector, error_code
from .config import Contact, NotifyConfig

PERMISSIONS = frozenset({"sns:Publish", "ses:SendEmail"})
TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)


class DeliveryError(Exception):
    pass


def _webhook(
    contact: Contact, subject: str, text: str, payload: dict[str, Any], retries: int
) -> None:
    assert contact.secret is not None
    retry = Retry(
        total=retries,
        backoff_factor=0.2,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"POST"}),
        raise_on_status=False,
    )
    http = urllib3.PoolManager(retries=retry, timeout=TIMEOUT)
    body = json.dumps({"text": f"*{subject}*\n{text}", **payload}).encode()
    try:
        resp = http.request(
            "POST", contact.secret, body=body, headers={"Content-Type": "application/json"}
        )
    except urllib3.exceptions.HTTPError as exc:
        # never the URL: it is a secret (Slack's hook URLs are)
        raise DeliveryError(f"webhook {contact.name}: {type(exc).__name__}") from None
    if resp.status >= 300:
        raise DeliveryError(f"webhook {contact.name}: HTTP {resp.status}")


def deliver(
    conn: Connector,
    config: NotifyConfig,
    contact: Contact,
    subject: str,
    text: str,
    payload: dict[str, Any],
    role_arn: str | None,
) -> None:
    """Send it; DeliveryError (never showing a secret) when it did not go."""
    if contact.channel == "webhook":
        _webhook(contact, subject, text, payload, config.retries)
        return
    try:
        if contact.channel == "sns":
            region = contact.target.split(":")[3]
            conn.client("sns", region, role_arn).publish(
                TopicArn=contact.target, Subject=subject[:100], Message=text
            )
        else:
            conn.client("ses", conn.home_region(), role_arn).send_email(
                Source=config.sender,
                Destination={"ToAddresses": [contact.target]},
                Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
            )
    except (ClientError, BotoCoreError) as exc:
        raise DeliveryError(f"{contact.channel} {contact.target}: {error_code(exc)}") from None
