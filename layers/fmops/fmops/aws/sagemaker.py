"""Amazon SageMaker: model registry, models, endpoint configs and endpoints; hyperparameter tuning jobs (read-only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fmops.aws._base import AwsService, error_code, error_message, translate, translate_errors
from fmops.errors import ResourceNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient


def is_not_found(exc: BaseException) -> bool:
    """SageMaker reports most missing resources as ValidationException 'Could not find ...'."""
    code = error_code(exc)
    if code in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    message = error_message(exc).lower()
    return code == "ValidationException" and any(
        text in message for text in ("could not find", "does not exist", "not found", "cannot find")
    )


def is_already_exists(exc: BaseException) -> bool:
    code = error_code(exc)
    message = error_message(exc).lower()
    return code in ("ResourceInUse", "ConflictException") or (
        code == "ValidationException" and "already exist" in message
    )


class SageMaker(AwsService):
    """The SageMaker calls the Lambdas make (jobs are started by Step Functions, not here)."""

    service_name = "sagemaker"

    def __init__(self, client: SageMakerClient | None = None) -> None:
        super().__init__(client)

    def _describe(self, action: str, what: str, **kwargs: Any) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return dict(getattr(self.client, action)(**kwargs))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise translate(exc, f"{action} {what}") from exc

    def _create(self, action: str, what: str, **kwargs: Any) -> bool:
        """Call a create API; False when the resource already exists (idempotent retries)."""
        from botocore.exceptions import ClientError

        try:
            getattr(self.client, action)(**kwargs)
        except ClientError as exc:
            if is_already_exists(exc):
                return False
            raise translate(exc, f"{action} {what}") from exc
        return True

    # ------------------------------------------------------------------------------------ registry

    def ensure_model_package_group(self, name: str, description: str, tags: list[dict[str, str]]) -> bool:
        """Create the group unless it exists; True when created.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        if self._describe("describe_model_package_group", name, ModelPackageGroupName=name) is not None:
            return False
        return self._create(
            "create_model_package_group",
            name,
            ModelPackageGroupName=name,
            ModelPackageGroupDescription=description[:1024],
            Tags=tags,
        )

    def describe_model_package_group(self, name: str) -> dict[str, Any] | None:
        """DescribeModelPackageGroup, or None when there is no such group.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        return self._describe("describe_model_package_group", name, ModelPackageGroupName=name)

    def list_model_packages(self, group: str, approval_status: str | None = None) -> list[dict[str, Any]]:
        """Summaries of the group's versions, newest first (an unknown group has none).

        Raises:
            TransientAwsError, AwsRequestError.
        """
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "MaxResults": 100}
        if approval_status:
            kwargs["ModelApprovalStatus"] = approval_status
        summaries: list[dict[str, Any]] = []
        try:
            while True:
                response = self.client.list_model_packages(**kwargs)
                summaries.extend(response.get("ModelPackageSummaryList", []))
                token = response.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise translate(exc, f"ListModelPackages {group}") from exc
        return sorted(
            summaries,
            key=lambda s: (s.get("ModelPackageVersion") or 0, str(s.get("CreationTime", ""))),
            reverse=True,
        )

    def describe_model_package(self, arn: str) -> dict[str, Any]:
        """DescribeModelPackage.

        Raises:
            ResourceNotFoundError, TransientAwsError, AwsRequestError.
        """
        found = self._describe("describe_model_package", arn, ModelPackageName=arn)
        if found is None:
            raise ResourceNotFoundError(f"model package {arn} does not exist")
        return found

    def create_model_package(self, request: dict[str, Any]) -> str:
        """CreateModelPackage; returns the ARN.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        with translate_errors(f"CreateModelPackage {request.get('ModelPackageGroupName')}"):
            response = self.client.create_model_package(**request)
        return str(response["ModelPackageArn"])

    def update_approval_status(self, arn: str, status: str, description: str) -> None:
        """Set ModelApprovalStatus (Approved, Rejected, PendingManualApproval) with a description.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        with translate_errors(f"UpdateModelPackage {arn}"):
            self.client.update_model_package(
                ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=description[:1024]
            )

    def update_model_package(
        self,
        arn: str,
        *,
        status: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """UpdateModelPackage: approval status and description and/or CustomerMetadataProperties (merged into
        the package's by SageMaker), in one call.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        kwargs: dict[str, Any] = {"ModelPackageArn": arn}
        if status:
            kwargs["ModelApprovalStatus"] = status
        if description is not None:
            kwargs["ApprovalDescription"] = description[:1024]
        if metadata:
            kwargs["CustomerMetadataProperties"] = metadata
        with translate_errors(f"UpdateModelPackage {arn}"):
            self.client.update_model_package(**kwargs)

    # ------------------------------------------------------------------------------------- serving

    def create_model(self, request: dict[str, Any]) -> bool:
        """CreateModel unless a model with that name exists; True when created."""
        name = str(request["ModelName"])
        if self._describe("describe_model", name, ModelName=name) is not None:
            return False
        return self._create("create_model", name, **request)

    def create_endpoint_config(self, request: dict[str, Any]) -> bool:
        """CreateEndpointConfig unless one with that name exists; True when created."""
        name = str(request["EndpointConfigName"])
        if self._describe("describe_endpoint_config", name, EndpointConfigName=name) is not None:
            return False
        return self._create("create_endpoint_config", name, **request)

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        """DescribeEndpoint, or None when there is no such endpoint."""
        return self._describe("describe_endpoint", name, EndpointName=name)

    def create_endpoint(self, name: str, config_name: str, tags: list[dict[str, str]]) -> bool:
        """CreateEndpoint; False when it already exists."""
        return self._create("create_endpoint", name, EndpointName=name, EndpointConfigName=config_name, Tags=tags)

    def update_endpoint(self, name: str, config_name: str) -> None:
        """UpdateEndpoint to a new endpoint config (blue/green by SageMaker).

        Raises:
            TransientAwsError, AwsRequestError.
        """
        with translate_errors(f"UpdateEndpoint {name}"):
            self.client.update_endpoint(EndpointName=name, EndpointConfigName=config_name)


class SageMakerTuning(AwsService):
    """The read-only hyperparameter tuning calls: ``fmops.lifecycle.tuning.record_tuning`` (RecordTuningFunction)
    and ``fmops hpo results``. The tuning job itself is created, waited for and stopped by Step Functions
    (``createHyperParameterTuningJob.sync`` in the HPO state machine), never here."""

    service_name = "sagemaker"

    def __init__(self, client: SageMakerClient | None = None) -> None:
        super().__init__(client)

    def describe_tuning_job(self, name: str) -> dict[str, Any]:
        """DescribeHyperParameterTuningJob (without ResponseMetadata).

        Raises:
            TransientAwsError, AwsRequestError (an unknown job too).
        """
        with translate_errors(f"DescribeHyperParameterTuningJob {name}"):
            response = dict(self.client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))
        response.pop("ResponseMetadata", None)
        return response

    def list_training_jobs(self, name: str) -> list[dict[str, Any]]:
        """Every training job the tuning job launched (all pages of ListTrainingJobsForHyperParameterTuningJob),
        oldest first.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        summaries: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "HyperParameterTuningJobName": name,
                "MaxResults": 100,
                "SortBy": "CreationTime",
                "SortOrder": "Ascending",
            }
            if token:
                kwargs["NextToken"] = token
            with translate_errors(f"ListTrainingJobsForHyperParameterTuningJob {name}"):
                page = self.client.list_training_jobs_for_hyper_parameter_tuning_job(**kwargs)
            summaries.extend(page.get("TrainingJobSummaries", []))
            token = page.get("NextToken")
            if not token:
                return summaries

    def describe_training_job(self, name: str) -> dict[str, Any]:
        """DescribeTrainingJob (without ResponseMetadata).

        Raises:
            TransientAwsError, AwsRequestError.
        """
        with translate_errors(f"DescribeTrainingJob {name}"):
            response = dict(self.client.describe_training_job(TrainingJobName=name))
        response.pop("ResponseMetadata", None)
        return response
