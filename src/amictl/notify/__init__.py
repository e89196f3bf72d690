"""Owners told before anything retires (issue 29): owners, one digest per owner, channels
(webhook, SNS, SES), the notices' journal. The wait itself (``notify.before``) is decided
in the one decision (:mod:`amictl.keep.decide`), from the ``amictl:notified`` tag."""

from .channels import PERMISSIONS
from .config import NotifyConfig, load_config, owner_of
from .journal import notice_rows, retired_without_notice
from .run import NOTIFIED_TAG, NoticeRun, notify

__all__ = [
    "NOTIFIED_TAG",
    "PERMISSIONS",
    "NoticeRun",
    "NotifyConfig",
    "load_config",
    "notice_rows",
    "notify",
    "owner_of",
    "retired_without_notice",
]
