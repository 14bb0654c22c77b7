"""Plan evaluation: the current champion becomes the processing job's third model input (when it has an artifact)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from fmops_testkit import FakeAws, load_event

from fmops.aws.sagemaker import SageMaker
from fmops.config import PlanEvaluationSettings
from fmops.errors import AwsRequestError, TransientAwsError
from fmops.lifecycle.evaluation import ENTRYPOINT_SCRIPT, PROCESSING_ROOT, plan_evaluation
from fmops.schemas import parse
from fmops.schemas.steps import EvaluationSpec, PlanEvaluationEvent

CHAMPION_MODEL = "s3://fmops-artifacts/training/churn-000000000000/churn-000000000000-train/output/model.tar.gz"


def package(
    run_id: str = "churn-000000000000", status: str = "Approved", model_uri: str | None = CHAMPION_MODEL
) -> str:
    """A version of the ``churn`` group registered by ``run_id`` (with a SageMaker artifact unless None)."""
    client = boto3.client("sagemaker")
    try:
        client.create_model_package_group(ModelPackageGroupName="churn")
    except client.exceptions.ClientError:
        pass  # already there
    request: dict[str, Any] = {
        "ModelPackageGroupName": "churn",
        "ModelPackageDescription": f"fmops run {run_id}",
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": {"run_id": run_id, "accuracy": "0.8"},
    }
    if model_uri:
        request["InferenceSpecification"] = {
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": model_uri}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        }
    return str(client.create_model_package(**request)["ModelPackageArn"])


def plan(sagemaker: SageMaker | None) -> EvaluationSpec:
    event = parse(PlanEvaluationEvent, load_event("plan_evaluation"))
    settings = PlanEvaluationSettings.from_env()
    return plan_evaluation(event.run, event.dataset, event.training, settings=settings, sagemaker=sagemaker)


def inputs(spec: EvaluationSpec) -> dict[str, dict[str, Any]]:
    return {i["InputName"]: i["S3Input"] for i in spec.sagemaker["ProcessingInputs"]}


def test_the_champion_is_a_third_model_input(aws: FakeAws) -> None:
    arn = package()
    spec = plan(aws.sagemaker)
    assert spec.champion_arn == arn and spec.champion_note is None
    channels = inputs(spec)
    assert list(channels) == ["model", "test", "code", "champion"]
    assert channels["champion"]["S3Uri"] == CHAMPION_MODEL
    assert channels["champion"]["LocalPath"] == f"{PROCESSING_ROOT}/champion"
    arguments = spec.sagemaker["AppSpecification"]["ContainerArguments"]
    assert arguments[-2:] == ["--champion-model-dir", f"{PROCESSING_ROOT}/champion"]
    assert spec.sagemaker["Environment"]["FMOPS_CHAMPION_ARN"] == arn


def test_the_newest_approved_version_other_than_this_runs_is_the_champion(aws: FakeAws) -> None:
    older = package("churn-000000000001")
    package("churn-000000000002", status="Rejected")
    package("churn-000000000003", status="PendingManualApproval")
    assert plan(aws.sagemaker).champion_arn == older
    newer = package("churn-000000000004")
    package("churn-3f2a9c1d0b7e")  # this run's own package (a retried execution) is never its champion
    assert plan(aws.sagemaker).champion_arn == newer


def test_without_a_champion_the_job_is_unchanged(aws: FakeAws) -> None:
    package(status="Rejected")
    spec = plan(aws.sagemaker)
    assert spec.champion_arn is None
    assert spec.champion_note == "no approved model in group churn yet"
    assert list(inputs(spec)) == ["model", "test", "code"]
    assert "--champion-model-dir" not in spec.sagemaker["AppSpecification"]["ContainerArguments"]
    assert "FMOPS_CHAMPION_ARN" not in spec.sagemaker["Environment"]
    assert plan(None).sagemaker == spec.sagemaker  # no lookup at all: the same request


def test_a_bedrock_champion_is_skipped(aws: FakeAws) -> None:
    arn = package(model_uri=None)
    spec = plan(aws.sagemaker)
    assert spec.champion_arn is None
    assert spec.champion_note == f"champion {arn} has no model artifact (a Bedrock custom model): not evaluated here"
    assert list(inputs(spec)) == ["model", "test", "code"]


class RefusingSageMaker(SageMaker):
    def __init__(self, error: Exception) -> None:
        super().__init__(client=object())  # type: ignore[arg-type]
        self.error = error

    def list_model_packages(self, group: str, approval_status: str | None = None) -> list[dict[str, Any]]:
        raise self.error


def test_a_refused_lookup_evaluates_without_champion(env: dict[str, str]) -> None:
    spec = plan(RefusingSageMaker(AwsRequestError("ListModelPackages churn: AccessDenied", code="AccessDenied")))
    assert spec.champion_arn is None
    assert spec.champion_note is not None and "could not be looked up" in spec.champion_note
    assert list(inputs(spec)) == ["model", "test", "code"]


def test_a_transient_lookup_failure_is_retried_by_the_workflow(env: dict[str, str]) -> None:
    with pytest.raises(TransientAwsError):
        plan(RefusingSageMaker(TransientAwsError("ListModelPackages churn: Throttling")))


def test_the_champion_plan_is_a_valid_api_request(aws: FakeAws) -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    package()
    spec = plan(aws.sagemaker)
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateProcessingJob")
    validate_parameters(spec.sagemaker, shape.input_shape)


def _tar(path: Path, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_the_entrypoint_unpacks_both_models_and_passes_the_arguments(tmp_path: Path) -> None:
    root = tmp_path / "processing"
    for name in ("model", "champion", "code"):
        (root / name).mkdir(parents=True)
    _tar(root / "model" / "model.tar.gz", {"config.json": "{}"})
    _tar(root / "champion" / "model.tar.gz", {"config.json": '{"champion": true}'})
    _tar(root / "code" / "sourcedir.tar.gz", {"evaluate.py": "import sys\nprint(' '.join(sys.argv[1:]))\n"})
    script = ENTRYPOINT_SCRIPT.replace(PROCESSING_ROOT, str(root)).replace("exec python3", "exec python3 -I")
    args = ["--model-dir", "m", "--champion-model-dir", "c"]
    proc = subprocess.run(["/bin/sh", "-c", script, "sh", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "--model-dir m --champion-model-dir c"
    assert (root / "model" / "config.json").read_text() == "{}"
    assert (root / "champion" / "config.json").read_text() == '{"champion": true}'
