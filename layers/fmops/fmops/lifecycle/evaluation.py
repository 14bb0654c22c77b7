"""Plan the evaluation job, then compute base vs fine-tuned metrics and write evaluation.json + report.html."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fmops.aws.bedrock import BedrockRuntime
from fmops.aws.s3 import S3Storage, split_uri
from fmops.config import CommonSettings, PlanEvaluationSettings
from fmops.data.formats import classification_prompt
from fmops.data.jsonl import HashingLineReader, parse_classification_line
from fmops.errors import DatasetValidationError, EvaluationError, ResourceNotFoundError
from fmops.lifecycle._common import CODE_KEY, Clock, iso, run_tags, utcnow
from fmops.lifecycle.report import render_report
from fmops.lifecycle.training import supports_volume_kms
from fmops.metrics import ClassificationReport, classification_report
from fmops.observability import logger, metrics
from fmops.schemas.jobs import (
    AppSpecification,
    ClusterConfig,
    CreateProcessingJobRequest,
    NetworkConfig,
    ProcessingInput,
    ProcessingOutput,
    ProcessingOutputConfig,
    ProcessingResources,
    S3Input,
    S3Output,
    StoppingCondition,
    Tag,
    VpcConfig,
)
from fmops.schemas.run import RunRequest
from fmops.schemas.steps import (
    DatasetInfo,
    EvaluateEvent,
    EvaluationResult,
    EvaluationSpec,
    MetricSummary,
    TrainingResult,
)

PROCESSING_ROOT = "/opt/ml/processing"
# SageMaker copies inputs but does not unpack archives: the entry point unpacks the model and the code.
ENTRYPOINT_SCRIPT = (
    "set -e; "
    f"if [ -f {PROCESSING_ROOT}/model/model.tar.gz ]; then "
    f"tar xzf {PROCESSING_ROOT}/model/model.tar.gz -C {PROCESSING_ROOT}/model; fi; "
    f'cd {PROCESSING_ROOT}/code && tar xzf sourcedir.tar.gz && exec python3 evaluate.py "$@"'
)
PREDICTIONS_FILE = "predictions.jsonl"
MAX_BEDROCK_RECORDS = 500


def evaluation_job_name(run_id: str) -> str:
    return f"{run_id}-eval"


def plan_evaluation(
    run: RunRequest, dataset: DatasetInfo, training: TrainingResult, *, settings: PlanEvaluationSettings
) -> EvaluationSpec:
    """The CreateProcessingJob request that runs evaluate.py on the test split (job ``<run_id>-eval``).

    Raises:
        EvaluationError: the training result has no model artifacts.
    """
    if not training.model_artifacts_uri:
        raise EvaluationError(f"training job {training.job_name} reported no model artifacts")
    output_uri = f"s3://{settings.artifacts_bucket}/evaluation/{run.run_id}/"
    code_uri = f"s3://{settings.artifacts_bucket}/{CODE_KEY}"
    kms = settings.kms_key_arn

    def channel(name: str, uri: str) -> ProcessingInput:
        return ProcessingInput(input_name=name, s3_input=S3Input(s3_uri=uri, local_path=f"{PROCESSING_ROOT}/{name}"))

    request = CreateProcessingJobRequest(
        processing_job_name=evaluation_job_name(run.run_id),
        role_arn=settings.sagemaker_role_arn,
        processing_inputs=[
            channel("model", training.model_artifacts_uri),
            channel("test", dataset.test_uri),
            channel("code", code_uri),
        ],
        processing_output_config=ProcessingOutputConfig(
            outputs=[
                ProcessingOutput(
                    output_name="output",
                    s3_output=S3Output(s3_uri=output_uri, local_path=f"{PROCESSING_ROOT}/output"),
                )
            ],
            kms_key_id=kms,
        ),
        processing_resources=ProcessingResources(
            cluster_config=ClusterConfig(
                instance_count=1,
                instance_type=run.evaluation_instance_type,
                volume_size_in_gb=run.volume_size_gb,
                volume_kms_key_id=kms if supports_volume_kms(run.evaluation_instance_type) else None,
            )
        ),
        app_specification=AppSpecification(
            image_uri=settings.processing_image_uri,
            container_entrypoint=["/bin/sh", "-c", ENTRYPOINT_SCRIPT, "sh"],
            container_arguments=[
                "--model-dir",
                f"{PROCESSING_ROOT}/model",
                "--test",
                f"{PROCESSING_ROOT}/test",
                "--output",
                f"{PROCESSING_ROOT}/output",
            ],
        ),
        network_config=NetworkConfig(
            enable_network_isolation=True,
            vpc_config=VpcConfig(
                security_group_ids=[settings.training_security_group_id], subnets=list(settings.subnet_ids)
            ),
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=min(run.max_runtime_seconds, 6 * 3600)),
        environment={"FMOPS_RUN_ID": run.run_id, "FMOPS_BASE_MODEL": run.base_model},
        tags=[Tag.model_validate(t) for t in run_tags(run, settings.stack_name)],
    )
    return EvaluationSpec(job_name=request.processing_job_name, output_uri=output_uri, sagemaker=request.dump())


# ------------------------------------------------------------------------------------------- predictions


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def read_predictions(s3: S3Storage, uri: str) -> Iterator[tuple[str, str, str, str]]:
    """``(text, reference, base, finetuned)`` per line of evaluate.py's predictions.jsonl (streamed).

    Raises:
        EvaluationError: missing file or a malformed line (named by its number).
    """
    bucket, key = split_uri(uri)
    try:
        stream = s3.open(bucket, key)
    except ResourceNotFoundError as exc:
        raise EvaluationError(f"the evaluation job wrote no {PREDICTIONS_FILE} at {uri}") from exc
    for line_no, raw in HashingLineReader(stream.iter_chunks()):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as exc:
            raise EvaluationError(f"{uri} line {line_no}: invalid JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise EvaluationError(f"{uri} line {line_no}: expected a JSON object")
        missing = [f for f in ("reference", "base", "finetuned") if f not in row]
        if missing:
            raise EvaluationError(f"{uri} line {line_no}: field '{missing[0]}' is missing")
        yield (
            str(row.get("text", "")),
            _label(row["reference"]),
            _label(row["base"]),
            _label(row["finetuned"]),
        )


def parse_generated_label(response: dict[str, Any], labels: list[str]) -> str:
    """The label in a Bedrock text-generation response (Titan, Llama, Anthropic-style or plain)."""
    text = ""
    results = response.get("results")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        text = str(results[0].get("outputText", ""))
    for key in ("outputText", "generation", "completion", "label"):
        if not text and isinstance(response.get(key), str):
            text = response[key]
    content = response.get("content")
    if not text and isinstance(content, list) and content and isinstance(content[0], dict):
        text = str(content[0].get("text", ""))
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    lowered = {label.lower(): label for label in labels}
    if first.lower() in lowered:
        return lowered[first.lower()]
    for label in sorted(labels, key=len, reverse=True):
        if label.lower() in first.lower():
            return label
    return first


def bedrock_predictions(
    runtime: BedrockRuntime, s3: S3Storage, run: RunRequest, dataset: DatasetInfo, model_id: str
) -> Iterator[tuple[str, str, str, str]]:
    """Invoke the base and the custom model on (up to 500 records of) the test split."""
    bucket, key = split_uri(dataset.test_uri)
    stream = s3.open(bucket, key)
    for line_no, raw in HashingLineReader(stream.iter_chunks()):
        if line_no > MAX_BEDROCK_RECORDS:
            break
        try:
            record = parse_classification_line(line_no, raw)
        except DatasetValidationError as exc:
            raise EvaluationError(f"{dataset.test_uri}: {exc}") from exc
        prompt = classification_prompt(record.text, dataset.labels)
        body = {"inputText": prompt, "textGenerationConfig": {"maxTokenCount": 16, "temperature": 0}}
        base = parse_generated_label(runtime.invoke_json(run.base_model, body), dataset.labels)
        tuned = parse_generated_label(runtime.invoke_json(model_id, body), dataset.labels)
        yield record.text, record.label, base, tuned


def summarize(report: ClassificationReport) -> MetricSummary:
    return MetricSummary(
        accuracy=report["accuracy"],
        f1_macro=report["f1_macro"],
        f1_weighted=report["f1_weighted"],
        precision_macro=report["precision_macro"],
        recall_macro=report["recall_macro"],
    )


def evaluate(
    event: EvaluateEvent,
    *,
    s3: S3Storage,
    settings: CommonSettings,
    runtime: BedrockRuntime | None = None,
    clock: Clock = utcnow,
) -> EvaluationResult:
    """Metrics of the base and the fine-tuned model on the test split; writes evaluation.json and report.html
    under ``runs/<run_id>/`` in the reports bucket.

    SageMaker: reads the processing job's predictions.jsonl. Bedrock (no evaluation_spec): invokes both models.

    Raises:
        EvaluationError: no or malformed predictions.
        TransientAwsError, AwsRequestError.
    """
    run, dataset, training = event.run, event.dataset, event.training
    if event.evaluation_spec is not None:
        predictions_uri = event.evaluation_spec.output_uri.rstrip("/") + "/" + PREDICTIONS_FILE
        rows = read_predictions(s3, predictions_uri)
    else:
        if not training.custom_model_arn:
            raise EvaluationError(f"training job {training.job_name} reported no custom model ARN")
        predictions_uri = f"s3://{settings.reports_bucket}/runs/{run.run_id}/{PREDICTIONS_FILE}"
        # On AWS a custom model is invoked through its provisioned throughput, not by its own ARN.
        model_id = (event.deployment.provisioned_model_arn if event.deployment else None) or training.custom_model_arn
        rows = bedrock_predictions(runtime or BedrockRuntime(), s3, run, dataset, model_id)

    references: list[str] = []
    base: list[str] = []
    tuned: list[str] = []
    for _text, reference, base_label, tuned_label in rows:
        references.append(reference)
        base.append(base_label)
        tuned.append(tuned_label)
    if not references:
        raise EvaluationError(f"no predictions in {predictions_uri}")
    if event.evaluation_spec is None:
        lines = [
            json.dumps({"line": i + 1, "reference": r, "base": b, "finetuned": t})
            for i, (r, b, t) in enumerate(zip(references, base, tuned, strict=True))
        ]
        s3.put_bytes(
            settings.reports_bucket,
            f"runs/{run.run_id}/{PREDICTIONS_FILE}",
            ("\n".join(lines) + "\n").encode(),
            "application/jsonlines",
        )

    labels = sorted(set(dataset.labels) | set(references))
    base_report = classification_report(references, base, labels=sorted(set(labels) | set(base)))
    tuned_report = classification_report(references, tuned, labels=sorted(set(labels) | set(tuned)))
    document = {
        "run_id": run.run_id,
        "use_case": run.use_case,
        "created_at": iso(clock()),
        "metric": run.metric,
        "threshold": run.threshold,
        "test_count": len(references),
        "predictions_uri": predictions_uri,
        "dataset": {"uri": dataset.source_uri, "version_id": dataset.version_id, "sha256": dataset.sha256},
        "base_model": run.base_model,
        "training_job": training.job_arn,
        "base": base_report,
        "finetuned": tuned_report,
    }
    prefix = f"runs/{run.run_id}/"
    evaluation_uri = s3.put_json(settings.reports_bucket, prefix + "evaluation.json", document)
    report_uri = s3.put_bytes(
        settings.reports_bucket, prefix + "report.html", render_report(document).encode(), "text/html; charset=utf-8"
    )
    base_summary, tuned_summary = summarize(base_report), summarize(tuned_report)
    metrics.add_metric(name="FinetunedAccuracy", unit="None", value=tuned_summary.accuracy)
    logger.info(
        "evaluation done",
        extra={"run_id": run.run_id, "base": base_summary.model_dump(), "finetuned": tuned_summary.model_dump()},
    )
    return EvaluationResult(
        metric=run.metric,
        base_metrics=base_summary,
        finetuned_metrics=tuned_summary,
        test_count=len(references),
        evaluation_uri=evaluation_uri,
        report_uri=report_uri,
    )
