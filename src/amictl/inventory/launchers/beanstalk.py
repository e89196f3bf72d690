"""Elastic Beanstalk environments that can still launch an image: the ``ImageId`` option
(namespace ``aws:autoscaling:launchconfiguration``) of every environment not terminated,
which every scale-out and every rebuild launches."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ... import interrupts
from ...model import Reference
from ..registry import SliceData, collector, pages
from .amis import is_ami_id

KIND = "beanstalk-environment"
NAMESPACE = "aws:autoscaling:launchconfiguration"
GONE = {"Terminating", "Terminated"}


def environment_image(eb: Any, app: str, env: str) -> str | None:
    """The environment's ImageId option, or None (none set, or terminated since listed)."""
    interrupts.check()
    try:
        resp = eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=env)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        if err.get("Code") == "InvalidParameterValue" and "No Environment found" in str(
            err.get("Message")
        ):
            return None
        raise
    for cfg in resp.get("ConfigurationSettings", []):
        for o in cfg.get("OptionSettings", []) or []:
            if o.get("Namespace") == NAMESPACE and o.get("OptionName") == "ImageId":
                value = str(o.get("Value") or "")
                return value if is_ami_id(value) else None
    return None


@collector(
    "beanstalk-environments",
    "elasticbeanstalk",
    ["elasticbeanstalk:DescribeEnvironments", "elasticbeanstalk:DescribeConfigurationSettings"],
    "Elastic Beanstalk environments not terminated (their ImageId option setting)",
)
def collect_environments(eb: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    for page in pages(eb, "describe_environments", IncludeDeleted=False):
        for env in page.get("Environments", []):
            out.items += 1
            if env.get("Status") in GONE:
                continue
            app, name = env.get("ApplicationName", ""), env.get("EnvironmentName", "")
            image = environment_image(eb, app, name)
            if image:
                arn = env.get("EnvironmentArn") or f"{app}/{name}"
                out.references.append(
                    Reference(
                        KIND,
                        arn,
                        f"Elastic Beanstalk environment {name} of {app} ({arn}): "
                        f"{NAMESPACE} ImageId",
                        image,
                        account,
                        region,
                    )
                )
    return out
