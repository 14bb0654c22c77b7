"""Amazon SNS notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmops.aws._base import AwsService, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


def clean_subject(subject: str) -> str:
    """SNS subjects: printable ASCII, one line, at most 100 characters."""
    text = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in subject.replace("\n", " "))
    return text.strip()[:100] or "fmops"


class Notifier(AwsService):
    """Publishes to the stack's notification topic."""

    service_name = "sns"

    def __init__(self, topic_arn: str, client: SNSClient | None = None) -> None:
        super().__init__(client)
        self.topic_arn = topic_arn

    def publish(self, subject: str, message: str, attributes: dict[str, str] | None = None) -> str:
        """Publish; returns the message id.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        attrs = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items() if v}
        with translate_errors(f"Publish to {self.topic_arn}"):
            response = self.client.publish(
                TopicArn=self.topic_arn,
                Subject=clean_subject(subject),
                Message=message[:200_000],
                MessageAttributes=attrs,
            )
        return str(response.get("MessageId", ""))
