"""Register the model version (with lineage and metrics) and apply the quality gate."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage, s3_uri, split_uri
from fmops.aws.sagemaker import SageMaker
from fmops.config import CommonSettings, RegisterModelSettings
from fmops.errors import RequestValidationError
from fmops.lifecycle._common import (
    CODE_KEY,
    STATUS_REGISTERED,
    Clock,
    fmt,
    iso,
    metric_of,
    run_tags,
    truncate,
    utcnow,
)
from fmops.observability import logger, metrics
from fmops.schemas.run import TASK_METRICS
from fmops.schemas.steps import GateResult, ModelPackageRef, PairedTest, QualityGateEvent, RegisterModelEvent

METADATA_VALUE_MAX = 256
# The training code archive is small; above this size its sha256 is not computed at registration (the ETag is
# recorded instead) unless S3 already holds one (object metadata or an S3 SHA-256 checksum).
MAX_HASHED_CODE_BYTES = 64 * 1024 * 1024
SHA256_METADATA_KEYS = ("fmops-sha256", "sha256")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def code_version(s3: S3Storage, bucket: str) -> dict[str, Any] | None:
    """The training code archive (``code/training/sourcedir.tar.gz``) as registered: URI, S3 version id and sha256.

    Cheapest source first: a ``fmops-sha256``/``sha256`` object metadata value, then S3's full-object SHA-256
    checksum, then hashing the (small) archive itself; above ``MAX_HASHED_CODE_BYTES`` only the ETag is kept.
    None when the archive does not exist.

    Raises:
        TransientAwsError, AwsRequestError.
    """
    head = s3.head(bucket, CODE_KEY)
    if head is None:
        return None
    info: dict[str, Any] = {
        "uri": s3_uri(bucket, CODE_KEY),
        "version_id": head["version_id"],
        "etag": head["etag"],
        "sha256": None,
        "sha256_source": None,
    }
    for key in SHA256_METADATA_KEYS:
        value = head["metadata"].get(key, "").lower()
        if _SHA256.match(value):
            info.update(sha256=value, sha256_source="object metadata")
            return info
    checksum = head.get("checksum_sha256")
    if isinstance(checksum, str) and "-" not in checksum:  # "-N": a checksum of part checksums
        try:
            digest = base64.b64decode(checksum, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) == 32:
            info.update(sha256=digest.hex(), sha256_source="s3 checksum")
            return info
    if head["size"] <= MAX_HASHED_CODE_BYTES:
        digest_of = hashlib.sha256()
        for chunk in s3.open(bucket, CODE_KEY, head["version_id"]).iter_chunks():
            digest_of.update(chunk)
        info.update(sha256=digest_of.hexdigest(), sha256_source="content")
    return info


def split_checksums(s3: S3Storage, manifest_uri: str) -> dict[str, str]:
    """``{split name: sha256}`` from the prepared data set's manifest ({} when it is missing or malformed).

    Raises:
        TransientAwsError, AwsRequestError.
    """
    try:
        bucket, key = split_uri(manifest_uri)
        found, content = s3.read_json_if_exists(bucket, key)
        manifest = json.loads(content) if found else {}
    except (ValueError, RequestValidationError) as exc:
        logger.warning("manifest not readable", extra={"manifest_uri": manifest_uri, "error": str(exc)})
        return {}
    splits = manifest.get("splits") if isinstance(manifest, dict) else None
    if not isinstance(splits, dict):
        return {}
    return {
        str(name): str(entry["sha256"])
        for name, entry in splits.items()
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
    }


def package_description(run_id: str) -> str:
    """The description that marks a package as this run's (how a retry finds it)."""
    return f"fmops run {run_id}"


def package_version(arn: str) -> int | None:
    tail = arn.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def find_run_package(sagemaker: SageMaker, group: str, run_id: str) -> dict[str, Any] | None:
    """The group's package registered by ``run_id``, if any."""
    wanted = package_description(run_id)
    for summary in sagemaker.list_model_packages(group):
        if summary.get("ModelPackageDescription") == wanted:
            return summary
    return None


def model_quality_statistics(event: RegisterModelEvent) -> dict[str, Any]:
    """SageMaker model-quality statistics for the registry's ModelMetrics: multiclass metrics for classification;
    the other tasks (which SageMaker's statistics format has no section for) carry theirs under ``fmops``."""
    tuned = event.evaluation.finetuned_metrics
    statistics: dict[str, Any] = {
        "version": 0.0,
        "dataset": {"item_count": event.evaluation.test_count, "evaluation_time": None},
    }
    if event.run.task == "classification":
        statistics["multiclass_classification_metrics"] = {
            "accuracy": {"value": tuned.accuracy, "standard_deviation": "NaN"},
            "weighted_f1": {"value": tuned.f1_weighted, "standard_deviation": "NaN"},
            "macro_f1": {"value": tuned.f1_macro, "standard_deviation": "NaN"},
            "macro_precision": {"value": tuned.precision_macro, "standard_deviation": "NaN"},
            "macro_recall": {"value": tuned.recall_macro, "standard_deviation": "NaN"},
        }
        statistics["fmops"] = {
            "evaluation_uri": event.evaluation.evaluation_uri,
            "base_metrics": event.evaluation.base_metrics.model_dump(),
        }
        return statistics
    statistics["fmops"] = {
        "task": event.run.task,
        "evaluation_uri": event.evaluation.evaluation_uri,
        "metrics": tuned.model_dump(),
        "base_metrics": event.evaluation.base_metrics.model_dump(),
    }
    return statistics


def metric_metadata(event: RegisterModelEvent) -> dict[str, str]:
    """The metrics recorded in the package metadata (the quality gate reads a champion's gate metric there):
    classification accuracy and f1_macro; the other tasks every metric they can gate on; each also as
    ``base_<name>``."""
    run, evaluation = event.run, event.evaluation
    names = ("accuracy", "f1_macro") if run.task == "classification" else TASK_METRICS[run.task]
    tuned, base = evaluation.finetuned_metrics.values(), evaluation.base_metrics.values()
    out: dict[str, str] = {}
    for name in names:
        if name in tuned:
            out[name] = f"{tuned[name]:.6f}"
    for name in names:
        if name in base:
            out[f"base_{name}"] = f"{base[name]:.6f}"
    return out


def package_task(package: dict[str, Any]) -> str:
    """The task a registered package was trained for (``task`` in its metadata; classification before tasks)."""
    return str((package.get("CustomerMetadataProperties") or {}).get("task") or "classification")


def register_model(
    event: RegisterModelEvent,
    *,
    sagemaker: SageMaker,
    s3: S3Storage,
    runs: Table,
    settings: RegisterModelSettings,
    clock: Clock = utcnow,
) -> ModelPackageRef:
    """Create the ``<use_case>`` group if needed and a PendingManualApproval version with lineage.

    Idempotent: when the group already holds this run's package, that package is returned.

    Raises:
        TransientAwsError, AwsRequestError.
    """
    run, dataset, training, evaluation = event.run, event.dataset, event.training, event.evaluation
    group = run.use_case
    tags = run_tags(run, settings.stack_name)
    sagemaker.ensure_model_package_group(group, f"fmops fine-tuned models for use case {group}", tags[1:])
    existing = find_run_package(sagemaker, group, run.run_id)
    if existing is not None:
        arn = str(existing["ModelPackageArn"])
        logger.info("model package already registered", extra={"run_id": run.run_id, "arn": arn})
        return ModelPackageRef(
            model_package_group_name=group, model_package_arn=arn, version=package_version(arn), created=False
        )

    prefix = f"runs/{run.run_id}/"
    statistics_uri = s3.put_json(
        settings.reports_bucket, prefix + "model-quality.json", model_quality_statistics(event)
    )
    splits = split_checksums(s3, dataset.manifest_uri)
    # Bedrock customization does not run the training code archive; SageMaker training, evaluation and serving do.
    code = code_version(s3, settings.artifacts_bucket) if run.backend == "sagemaker" else None
    lineage = {
        "run_id": run.run_id,
        "backend": run.backend,
        "dataset": {**dataset.model_dump(mode="json"), "test_sha256": splits.get("test"), "split_sha256": splits},
        "hyperparameters": run.hyperparameters,
        "base_model": run.base_model,
        "training": training.model_dump(mode="json"),
        "evaluation": evaluation.model_dump(mode="json"),
        "code": code,
        "registered_at": iso(clock()),
    }
    lineage_uri = s3.put_json(settings.reports_bucket, prefix + "lineage.json", lineage)
    hyperparameters = json.dumps(run.hyperparameters, sort_keys=True, separators=(",", ":"))
    if len(hyperparameters) > METADATA_VALUE_MAX:
        hyperparameters = f"{lineage_uri}#hyperparameters"
    metadata = {
        "run_id": run.run_id,
        "use_case": run.use_case,
        "backend": run.backend,
        "dataset_uri": dataset.source_uri,
        "dataset_version_id": dataset.version_id or "",
        "dataset_sha256": dataset.sha256,
        "manifest_uri": dataset.manifest_uri,
        "test_sha256": splits.get("test", ""),
        "code_sha256": (code or {}).get("sha256") or "",
        "hyperparameters": hyperparameters,
        "base_model": run.base_model,
        "training_job_arn": training.job_arn,
        "task": run.task,
        **metric_metadata(event),
        "report_uri": evaluation.report_uri,
        "evaluation_uri": evaluation.evaluation_uri,
        "lineage_uri": lineage_uri,
    }
    if training.custom_model_arn:
        metadata["custom_model_arn"] = training.custom_model_arn
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": package_description(run.run_id),
        "ModelApprovalStatus": "PendingManualApproval",
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": statistics_uri}}},
        "CustomerMetadataProperties": {k: truncate(v, METADATA_VALUE_MAX) for k, v in metadata.items() if v},
        "Tags": tags,
    }
    if training.model_artifacts_uri:
        request["InferenceSpecification"] = {
            "Containers": [
                {
                    "Image": settings.inference_image_uri,
                    "ModelDataUrl": training.model_artifacts_uri,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{settings.artifacts_bucket}/{CODE_KEY}",
                        "FMOPS_RUN_ID": run.run_id,
                    },
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": [run.inference_instance_type],
            "SupportedTransformInstanceTypes": [run.inference_instance_type],
        }
    arn = sagemaker.create_model_package(request)
    runs.update(run.run_id, {"status": STATUS_REGISTERED, "model_package_arn": arn, "updated_at": iso(clock())})
    metrics.add_metric(name="ModelsRegistered", unit="Count", value=1)
    logger.info("model package registered", extra={"run_id": run.run_id, "arn": arn})
    return ModelPackageRef(model_package_group_name=group, model_package_arn=arn, version=package_version(arn))


def champion(sagemaker: SageMaker, group: str, exclude_arn: str) -> dict[str, Any] | None:
    """The newest Approved package of the group other than ``exclude_arn`` (described), if any."""
    for summary in sagemaker.list_model_packages(group, approval_status="Approved"):
        arn = str(summary["ModelPackageArn"])
        if arn != exclude_arn and summary.get("ModelApprovalStatus", "Approved") == "Approved":
            return sagemaker.describe_model_package(arn)
    return None


def _recorded_metric(package: dict[str, Any], metric: str) -> float | None:
    value = (package.get("CustomerMetadataProperties") or {}).get(metric)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def significantly_worse(test: PairedTest) -> bool:
    """The fine-tuned model is worse than the baseline beyond chance: McNemar significant with the baseline
    right more often (classification), or the paired-bootstrap interval of the metric difference wholly below
    zero (every task)."""
    b, c = test.baseline_only_correct, test.finetuned_only_correct
    mcnemar_worse = test.mcnemar_p_value is not None and test.significant and b is not None and c is not None and b > c
    return mcnemar_worse or test.delta_ci[1] < 0


def _paired_evidence(test: PairedTest, metric: str) -> str:
    interval = f"[{test.delta_ci[0]:+.4f}, {test.delta_ci[1]:+.4f}]"
    if test.mcnemar_p_value is not None:
        return f"McNemar p = {test.mcnemar_p_value:.4f}; {metric} difference {test.delta:+.4f}, 95% interval {interval}"
    return (
        f"paired bootstrap: {metric} difference {test.delta:+.4f}, 95% interval {interval}, "
        f"p = {test.bootstrap_p_value:.4f}"
    )


def quality_gate(event: QualityGateEvent, *, sagemaker: SageMaker, settings: CommonSettings) -> GateResult:
    """Pass iff the fine-tuned metric is >= the run's threshold and not significantly worse than the champion.

    When the champion was evaluated on this run's test split (``evaluation.paired_tests.finetuned_vs_champion``)
    the comparison is the paired test: the gate fails only when the fine-tuned model is significantly worse
    (McNemar, or the paired-bootstrap interval of the difference below zero); a small drop within chance
    passes, and the reason says so with the p-value. A champion that could not be evaluated here (a Bedrock
    model, no artifact) is compared by its recorded metric, strictly. A failed gate is not an exception: the
    workflow routes ``passed: false`` to the failure path with ``reason`` as the cause.

    Raises:
        TransientAwsError, AwsRequestError.
    """
    run, package, evaluation = event.run, event.model_package, event.evaluation
    metric = run.metric
    value = metric_of(evaluation.finetuned_metrics, metric)
    paired = evaluation.paired_tests.get("finetuned_vs_champion")
    if paired is not None and evaluation.champion_metrics is not None:
        champion_arn: str | None = evaluation.champion_arn
        champion_value: float | None = metric_of(evaluation.champion_metrics, metric)
    else:
        best = champion(sagemaker, package.model_package_group_name, package.model_package_arn)
        if best is not None and package_task(best) != run.task:
            logger.info(
                "champion of another task not compared",
                extra={"run_id": run.run_id, "champion": best.get("ModelPackageArn"), "task": package_task(best)},
            )
            best = None
        champion_arn = str(best["ModelPackageArn"]) if best else None
        champion_value = _recorded_metric(best, metric) if best else None

    if value < run.threshold:
        passed = False
        reason = f"quality gate failed: {metric} {fmt(value)} is below the threshold {fmt(run.threshold)}"
    elif paired is not None and significantly_worse(paired):
        passed = False
        reason = (
            f"quality gate failed: {metric} {fmt(value)} is significantly worse than the champion's "
            f"{fmt(champion_value)} on the same test split ({champion_arn}): {paired.verdict}"
        )
    elif paired is None and champion_value is not None and value < champion_value:
        passed = False
        reason = (
            f"quality gate failed: {metric} {fmt(value)} is below the current champion's recorded "
            f"{fmt(champion_value)} ({champion_arn})"
        )
    else:
        passed = True
        if champion_arn is None:
            versus = "no approved champion yet"
        elif paired is not None:
            versus = (
                f"not significantly worse than champion {fmt(champion_value)} on the same test split "
                f"({_paired_evidence(paired, metric)}) ({champion_arn})"
            )
        elif champion_value is None:
            versus = f"champion {champion_arn} has no recorded {metric}"
        else:
            versus = f">= champion's recorded {fmt(champion_value)} ({champion_arn})"
        reason = f"quality gate passed: {metric} {fmt(value)} >= threshold {fmt(run.threshold)}; {versus}"
    metrics.add_metric(name="QualityGatePassed" if passed else "QualityGateFailed", unit="Count", value=1)
    logger.info("quality gate", extra={"run_id": run.run_id, "passed": passed, "reason": reason})
    return GateResult(
        passed=passed,
        reason=reason,
        metric=metric,
        value=value,
        threshold=run.threshold,
        champion_arn=champion_arn,
        champion_value=champion_value,
    )
