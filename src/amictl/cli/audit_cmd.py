"""placeholder (issue 11)."""

import click


def register(cli: click.Group) -> None:
    return None
