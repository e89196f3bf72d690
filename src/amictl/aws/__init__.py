"""The only package that calls boto3: sessions, clients, retries, paginated collectors."""

from .session import AwsConfig, Connector, Target, aws_error

__all__ = ["AwsConfig", "Connector", "Target", "aws_error"]
