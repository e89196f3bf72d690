"""What the sandbox's SNS and SES sent (moto keeps it in memory): read through the control
API (``POST /_amictl/sent`` with ``{"account": ...}``), for tests that check what owners
were told. Not a patch: moto already publishes to topics and sends emails (SES refuses an
unverified sender, ``MessageRejected``, as AWS does in its sandbox)."""

from __future__ import annotations

from typing import Any


def sent(data: dict[str, Any]) -> dict[str, Any]:
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    account = str(data.get("account") or "123456789012")
    emails = []
    for region, backend in ses_backends[account].items():
        for m in getattr(backend, "sent_messages", []):
            emails.append(
                {
                    "region": region,
                    "source": getattr(m, "source", None),
                    "to": (getattr(m, "destinations", None) or {}).get("ToAddresses", []),
                    "subject": getattr(m, "subject", None),
                    "body": getattr(m, "body", None),
                }
            )
    published = []
    for region, sns in sns_backends[account].items():
        for arn, topic in sns.topics.items():
            for _mid, message, subject, _attrs, _group in topic.sent_notifications:
                published.append(
                    {"region": region, "topic": arn, "subject": subject, "message": message}
                )
    return {"emails": emails, "sns": published}
