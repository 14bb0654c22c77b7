"""Amazon Bedrock: provisioned throughput for custom models, and model invocation for evaluation."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fmops.aws._base import AwsService, error_code, translate, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient


class Bedrock(AwsService):
    """The control plane calls (customization jobs are started by Step Functions)."""

    service_name = "bedrock"

    def __init__(self, client: BedrockClient | None = None) -> None:
        super().__init__(client)

    def get_provisioned_throughput(self, name: str) -> dict[str, Any] | None:
        """GetProvisionedModelThroughput by name, or None when there is none."""
        from botocore.exceptions import ClientError

        try:
            return dict(self.client.get_provisioned_model_throughput(provisionedModelId=name))
        except ClientError as exc:
            if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                return None
            raise translate(exc, f"GetProvisionedModelThroughput {name}") from exc

    def create_provisioned_throughput(self, name: str, model_arn: str, tags: list[dict[str, str]]) -> str:
        """A no-commitment provisioned throughput (1 model unit); returns its ARN.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        with translate_errors(f"CreateProvisionedModelThroughput {name}"):
            response = self.client.create_provisioned_model_throughput(
                modelUnits=1, provisionedModelName=name, modelId=model_arn, tags=tags
            )
        return str(response["provisionedModelArn"])

    def delete_provisioned_throughput(self, name_or_arn: str) -> bool:
        """Delete a provisioned throughput (it is billed by the hour); False when there is none.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        from botocore.exceptions import ClientError

        try:
            self.client.delete_provisioned_model_throughput(provisionedModelId=name_or_arn)
            return True
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise translate(exc, f"DeleteProvisionedModelThroughput {name_or_arn}") from exc


class BedrockRuntime(AwsService):
    """InvokeModel."""

    service_name = "bedrock-runtime"

    def __init__(self, client: BedrockRuntimeClient | None = None) -> None:
        super().__init__(client)

    def invoke_json(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Invoke a model with a JSON body; returns the decoded JSON response.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        with translate_errors(f"InvokeModel {model_id}"):
            response = self.client.invoke_model(
                modelId=model_id,
                body=json.dumps(body).encode(),
                contentType="application/json",
                accept="application/json",
            )
            raw = response["body"].read()
        try:
            decoded = json.loads(raw or b"{}")
        except ValueError:
            return {"outputText": raw.decode("utf-8", "replace")}
        return decoded if isinstance(decoded, dict) else {"outputText": json.dumps(decoded)}
