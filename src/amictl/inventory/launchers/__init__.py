"""Reference finders for the AWS services other than EC2's own launchers that launch from
AMI ids (issue 26): one module per service, each registering its kinds with
:func:`amictl.inventory.registry.collector`. Importing this package registers them all."""

from __future__ import annotations
