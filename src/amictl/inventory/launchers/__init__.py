"""Reference finders for the AWS services other than EC2's own launchers that launch from
AMI ids (issue 26): one module per service, each registering its kinds with
:func:`amictl.inventory.registry.collector`. Importing this package registers them all."""

from __future__ import annotations

from . import batch as _batch  # noqa: F401 - AWS Batch compute environments
from . import beanstalk as _beanstalk  # noqa: F401, E402
from . import cloudformation as _cloudformation  # noqa: F401, E402
from . import emr as _emr  # noqa: F401 - EMR clusters
from . import fleets as _fleets  # noqa: F401 - Spot Fleet requests and EC2 Fleets
from . import imagebuilder as _imagebuilder  # noqa: F401, E402
from . import spot as _spot  # noqa: F401 - Spot instance requests
