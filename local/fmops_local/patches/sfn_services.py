"""Step Functions optimised integrations for SageMaker and Bedrock, including ``.sync``, and for Step Functions.

moto's interpreter forwards ``sagemaker:*``/``bedrock:*`` calls without ``.sync`` support. These two
services start the job, then poll describe/get until a terminal status, as Step Functions does: the
task output is the final Describe* response; a Failed or Stopped job fails the task with
``States.TaskFailed`` and the job's failure reason in the cause. Training, processing, transform and
hyperparameter tuning jobs (``createHyperParameterTuningJob.sync``: the HPO state machine) are covered.

``states:startExecution`` (``.sync``, ``.sync:2``: a child state machine, as the fine-tune workflow starts the
HPO one) is moto's own service, whose request/response normalisers are stubs: the state's PascalCase
parameters reach boto3 unconverted and the response keeps boto3's camelCase. ``StepFunctionsService`` converts
both ways from the botocore shapes, as Step Functions does.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

# api action (lower case) -> (describe method, request key, name field in request, status field, terminal ok,
# terminal failed)
_SYNC_JOBS: dict[str, tuple[str, str, str, str, set[str], set[str]]] = {
    "createtrainingjob": (
        "describe_training_job",
        "TrainingJobName",
        "TrainingJobName",
        "TrainingJobStatus",
        {"Completed"},
        {"Failed", "Stopped"},
    ),
    "createprocessingjob": (
        "describe_processing_job",
        "ProcessingJobName",
        "ProcessingJobName",
        "ProcessingJobStatus",
        {"Completed"},
        {"Failed", "Stopped"},
    ),
    "createtransformjob": (
        "describe_transform_job",
        "TransformJobName",
        "TransformJobName",
        "TransformJobStatus",
        {"Completed"},
        {"Failed", "Stopped"},
    ),
    "createhyperparametertuningjob": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
        {"Completed"},
        {"Failed", "Stopped"},
    ),
    "createmodelcustomizationjob": (
        "get_model_customization_job",
        "jobIdentifier",
        "jobName",
        "status",
        {"Completed"},
        {"Failed", "Stopped"},
    ),
}


def _jsonable(value: Any) -> Any:
    """Describe* responses carry datetimes; Step Functions state data is JSON."""
    return json.loads(json.dumps(value, default=lambda o: o.isoformat() if isinstance(o, _dt.datetime) else str(o)))


class _JobService(StateTaskServiceCallback):
    """Request/response and ``.sync`` for a job-style AWS API."""

    boto_service: str = ""

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def _validate_service_integration_is_supported(self) -> None:
        action = self.resource.api_action.lower()
        if self.resource.condition == ResourceCondition.Sync and action not in _SYNC_JOBS:
            raise ValueError(f"The resource provided {self.resource.resource_arn} does not support .sync")

    def _request(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The boto3 request for the state's Parameters."""
        return parameters

    def _output(self, response: Any) -> Any:
        """The state's result for a boto3 response."""
        return response

    def _client(self, resource_runtime_part: Any, state_credentials: Any) -> Any:
        return boto_client_for(
            service=self.boto_service,
            region=resource_runtime_part.region,
            state_credentials=state_credentials,
        )

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict,
        state_credentials: Any,
    ) -> None:
        client = self._client(resource_runtime_part, state_credentials)
        action = self._get_boto_service_action()
        response = getattr(client, action)(**self._request(normalised_parameters)) or {}
        response.pop("ResponseMetadata", None)
        env.stack.append(self._output(_jsonable(response)))

    def _build_sync_resolver(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict,
        state_credentials: Any,
    ) -> Callable[[], Any] | None:
        env.stack.pop()  # the create response; the sync output is the final describe response
        describe, key, name_field, status_field, ok, failed = _SYNC_JOBS[self.resource.api_action.lower()]
        client = self._client(resource_runtime_part, state_credentials)
        name = self._request(normalised_parameters)[name_field]

        def _resolve() -> Any | None:
            job = getattr(client, describe)(**{key: name})
            job.pop("ResponseMetadata", None)
            status = job.get(status_field)
            if status in ok:
                return self._output(_jsonable(job))
            if status in failed:
                # As on AWS, the cause of a failed .sync job is its final Describe* response.
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=json.dumps(self._output(_jsonable(job))),
                            )
                        ),
                    )
                )
            return None

        return _resolve


class SageMakerService(_JobService):
    boto_service = "sagemaker"


class BedrockService(_JobService):
    """Bedrock's optimised integration takes and returns PascalCase; its API (and boto3) is camelCase."""

    boto_service = "bedrock"
    _opaque = {"hyperParameters", "HyperParameters"}  # user-defined keys: left as they are

    def _request(self, parameters: dict[str, Any]) -> dict[str, Any]:
        return dict(_recase(parameters, _camel, self._opaque))

    def _output(self, response: Any) -> Any:
        return _recase(response, _pascal, self._opaque)


@functools.cache
def _operation(service: str, action: str) -> Any:
    """The botocore operation model of ``action`` (snake_case, as moto names it) of ``service``."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    names = {botocore.xform_name(op): op for op in model.operation_names}
    return model.operation_model(names[action])


class StepFunctionsService(StateTaskServiceSfn):
    """``states:startExecution`` and friends with the request/response normalisation moto leaves out."""

    def _normalise_parameters(
        self,
        parameters: dict,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        super()._normalise_parameters(parameters, boto_service_name, service_action_name)  # Input -> JSON text
        operation = _operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if operation.input_shape is not None:
            self._to_boto_request(parameters, operation.input_shape)

    def _normalise_response(
        self,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        operation = _operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if operation.output_shape is not None:
            self._from_boto_response(response, operation.output_shape)


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def _pascal(key: str) -> str:
    return key[:1].upper() + key[1:]


def _recase(node: Any, fn: Callable[[str], str], opaque: set[str]) -> Any:
    if isinstance(node, dict):
        return {fn(k): (v if k in opaque else _recase(v, fn, opaque)) for k, v in node.items()}
    if isinstance(node, list):
        return [_recase(v, fn, opaque) for v in node]
    return node


def apply() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    original = state_task_factory.state_task_service_for
    if getattr(original, "_fmops", False):
        return

    def state_task_service_for(service_name: str) -> Any:
        if service_name == "sagemaker":
            return SageMakerService()
        if service_name == "bedrock":
            return BedrockService()
        if service_name == "states":
            return StepFunctionsService()
        return original(service_name)

    state_task_service_for._fmops = True
    state_task_factory.state_task_service_for = state_task_service_for
