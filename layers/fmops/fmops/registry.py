"""The model registry as a library: versions, lineage, comparison and decisions of a use case's models.

The SageMaker Model Registry is the store: one model package group per use case (group name = use case), one
package version per registered run (``fmops.lifecycle.registry.register_model``). A package's
CustomerMetadataProperties hold its lineage summary (run id, data set URI/version/sha256, test split sha256,
hyperparameters, base model, training job, code sha256, headline metrics, report/evaluation/lineage URIs); the
full lineage JSON is at ``lineage_uri`` in the reports bucket.

Metrics follow the version's ``task`` (recorded at registration; a version without one is classification, as
registered before tasks): the headline metrics are the task's (``headline_names``: classification accuracy and
f1_macro; the other tasks every metric they can gate on, ``fmops.schemas.run.TASK_METRICS``), each beside the base
model's (``base_<name>``). ``compare`` refuses versions of different tasks; its paired test is McNemar's on
per-example correctness for classification, Koehn's paired bootstrap of the task's gate metric for the others.

Every decision (``Registry.decide`` and the workflow's approval, ``fmops.lifecycle.approval``) is appended to the
package's approval history ``{who, when, decision, reason}``: the newest entries that fit SageMaker's 256-character
metadata value in ``approval_history`` (JSON), the whole history in ``approval-history.json`` next to the lineage
(``approval_history_uri``).

Lambda-light: the standard library and the fmops AWS wrappers only (no numpy).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from fmops.aws.s3 import S3Storage, s3_uri, split_uri
from fmops.aws.sagemaker import SageMaker
from fmops.errors import AwsRequestError, FmopsError, RequestValidationError, ResourceNotFoundError
from fmops.lifecycle._common import Clock, iso, utcnow
from fmops.observability import logger
from fmops.schemas.run import TASK_METRICS

if TYPE_CHECKING:
    from fmops.aws.dynamodb import Table

RegistryDecision = Literal["approve", "reject"]

# SageMaker's ModelPackageGroupName pattern.
GROUP_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
METADATA_VALUE_MAX = 256
DEFAULT_TASK = "classification"
# Classification's headline metrics (what registration has always recorded in the metadata).
CLASSIFICATION_HEADLINE = ("accuracy", "f1_macro")
HEADLINE_METRICS = ("accuracy", "f1_macro", "base_accuracy", "base_f1_macro")
SUMMARY_METRICS = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro")
BOOTSTRAP_CONFIDENCE = 0.95
HISTORY_KEY = "approval_history"
HISTORY_URI_KEY = "approval_history_uri"
HISTORY_FILE = "approval-history.json"
MAX_COMPARED = 10
SIGNIFICANCE = 0.05
STATUS_BY_DECISION: dict[str, str] = {"approve": "Approved", "reject": "Rejected"}
PAST_TENSE: dict[str, str] = {"approve": "approved", "reject": "rejected"}


class WorkflowApprovalPendingError(FmopsError):
    """The version's run is waiting for its workflow approval (task token): decide it there (409)."""


# ------------------------------------------------------------------------------------------------ parsing


def validate_group(group: str) -> str:
    """A model package group name (= use case).

    Raises:
        RequestValidationError: not a SageMaker model package group name.
    """
    if not isinstance(group, str) or not GROUP_PATTERN.match(group):
        raise RequestValidationError(f"{group!r} is not a model package group name", field="group")
    return group


def validate_version(version: int | str) -> int:
    """A version number (1, 2, ...).

    Raises:
        RequestValidationError: not a positive integer.
    """
    text = str(version).strip()
    if not re.fullmatch(r"[1-9][0-9]{0,9}", text):
        raise RequestValidationError(f"version {version!r} is not a positive integer", field="version")
    return int(text)


def parse_versions(text: str | None) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (duplicates dropped; 2 to 10 versions).

    Raises:
        RequestValidationError: missing, not numbers, fewer than 2 or more than 10 distinct versions.
    """
    if not text or not text.strip():
        raise RequestValidationError("versions is required: e.g. versions=1,2", field="versions")
    try:
        numbers = [validate_version(part) for part in text.split(",") if part.strip()]
    except RequestValidationError as exc:
        raise RequestValidationError(f"versions: {exc.message}", field="versions") from exc
    return check_compared(numbers)


def check_compared(versions: Iterable[int]) -> list[int]:
    wanted = list(dict.fromkeys(validate_version(v) for v in versions))
    if len(wanted) < 2:
        raise RequestValidationError("compare needs at least 2 different versions", field="versions")
    if len(wanted) > MAX_COMPARED:
        raise RequestValidationError(f"compare takes at most {MAX_COMPARED} versions", field="versions")
    return wanted


def _version_of(summary: dict[str, Any]) -> int | None:
    value = summary.get("ModelPackageVersion")
    if isinstance(value, int):
        return value
    tail = str(summary.get("ModelPackageArn", "")).rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _when(value: Any) -> str | None:
    if isinstance(value, datetime):
        return iso(value)
    return str(value) if value else None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def package_metadata(package: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (package.get("CustomerMetadataProperties") or {}).items()}


def version_task(metadata: dict[str, str]) -> str:
    """The task a version was trained for (``task`` in its metadata; classification before tasks existed)."""
    return metadata.get("task") or DEFAULT_TASK


def headline_names(task: str) -> tuple[str, ...]:
    """The metrics registration records for ``task``: classification accuracy and f1_macro; the other tasks every
    metric they can gate on, the default gate metric first (``TASK_METRICS``)."""
    if task == DEFAULT_TASK:
        return CLASSIFICATION_HEADLINE
    return TASK_METRICS.get(task, ())


def headline_metrics(metadata: dict[str, str]) -> dict[str, float | None]:
    """The metrics recorded in the package metadata at registration, per the version's task: the fine-tuned
    model's (gate metric first), then the base model's as ``base_<name>``."""
    names = headline_names(version_task(metadata))
    return {
        **{name: _float(metadata.get(name)) for name in names},
        **{f"base_{name}": _float(metadata.get(f"base_{name}")) for name in names},
    }


def summary_names(task: str, present: Iterable[str] = ()) -> list[str]:
    """The metrics ``compare`` puts side by side for ``task``, in order: classification's five; the other tasks' gate
    metrics, then the others they report (``present``: e.g. multilabel's hamming_loss), sorted."""
    known = list(SUMMARY_METRICS if task == DEFAULT_TASK else TASK_METRICS.get(task, ()))
    return known + sorted(set(present) - set(known))


def inference_summary(package: dict[str, Any]) -> dict[str, Any] | None:
    """What serves the version: containers (image, model data, entry point) and the supported types."""
    spec = package.get("InferenceSpecification") or {}
    custom_model = package_metadata(package).get("custom_model_arn")
    if not spec and not custom_model:
        return None
    containers = []
    for container in spec.get("Containers") or []:
        environment = container.get("Environment") or {}
        containers.append(
            {
                "image": container.get("Image"),
                "model_data_url": container.get("ModelDataUrl"),
                "program": environment.get("SAGEMAKER_PROGRAM"),
                "code_uri": environment.get("SAGEMAKER_SUBMIT_DIRECTORY"),
            }
        )
    return {
        "containers": containers,
        "content_types": list(spec.get("SupportedContentTypes") or []),
        "response_types": list(spec.get("SupportedResponseMIMETypes") or []),
        "realtime_instance_types": list(spec.get("SupportedRealtimeInferenceInstanceTypes") or []),
        "transform_instance_types": list(spec.get("SupportedTransformInstanceTypes") or []),
        "custom_model_arn": custom_model,
    }


# ------------------------------------------------------------------------------------------ approval history


def history_entry(who: str, when: str, decision: str, reason: str) -> dict[str, str]:
    """One approval-history entry; ``decision`` is ``approved`` or ``rejected``, ``when`` ISO-8601 UTC."""
    return {"who": who, "when": when, "decision": decision, "reason": reason}


def _entries(value: Any) -> list[dict[str, str]]:
    if isinstance(value, dict):
        value = value.get("approval_history")
    if not isinstance(value, list):
        return []
    return [
        {k: str(e.get(k, "")) for k in ("who", "when", "decision", "reason")}
        for e in value
        if isinstance(e, dict) and e.get("when") and e.get("decision")
    ]


def parse_history(value: str | None) -> list[dict[str, str]]:
    """The entries of an ``approval_history`` metadata value ([] when absent or malformed)."""
    if not value:
        return []
    try:
        return _entries(json.loads(value))
    except ValueError:
        return []


def merge_history(*histories: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """One history, oldest first; an entry is identified by (when, who, decision), the first copy wins (the full
    S3 copy is passed first: the metadata copy may carry a shortened reason)."""
    merged: dict[tuple[str, str, str], dict[str, str]] = {}
    for history in histories:
        for entry in history:
            merged.setdefault((entry["when"], entry["who"], entry["decision"]), entry)
    return sorted(merged.values(), key=lambda e: e["when"])


def _dump(entries: list[dict[str, str]]) -> str:
    return json.dumps(entries, separators=(",", ":"), ensure_ascii=False)


def trim_history(entries: Sequence[dict[str, str]], limit: int = METADATA_VALUE_MAX) -> str:
    """The ``approval_history`` metadata value: the newest entries whose JSON fits ``limit`` characters (oldest
    first); when even the newest does not fit alone, its reason (then its caller) is shortened with ``...``."""
    kept: list[dict[str, str]] = []
    for entry in reversed(entries):
        if len(_dump([entry, *kept])) > limit:
            break
        kept.insert(0, entry)
    if kept or not entries:
        return _dump(kept)
    newest = dict(entries[-1])
    for field in ("reason", "who"):
        while len(_dump([newest])) > limit and newest[field]:
            overflow = len(_dump([newest])) - limit
            text = newest[field]
            keep = len(text) - overflow - 3
            newest[field] = text[:keep] + "..." if keep > 0 else ""
    return _dump([newest])


def history_uri(
    metadata: dict[str, str], group: str, version: int | None, reports_bucket: str | None = None
) -> str | None:
    """Where the full history of a package lives: the recorded URI, else next to its lineage, else under
    ``runs/<run_id>/`` (or ``runs/registry/<group>/<version>/``) of the reports bucket; None without any."""
    if metadata.get(HISTORY_URI_KEY):
        return metadata[HISTORY_URI_KEY]
    lineage = metadata.get("lineage_uri", "")
    if lineage.startswith("s3://") and "/" in lineage[5:]:
        return lineage.rsplit("/", 1)[0] + "/" + HISTORY_FILE
    if not reports_bucket:
        return None
    run_id = metadata.get("run_id")
    folder = f"runs/{run_id}/" if run_id else f"runs/registry/{group}/{version}/"
    return s3_uri(reports_bucket, folder + HISTORY_FILE)


def _read_json(s3: S3Storage, uri: str | None) -> Any:
    """A JSON document from S3, or None when it does not exist (or reads as forbidden: without s3:ListBucket a
    missing object is a 403) or is not JSON.

    Raises:
        TransientAwsError, AwsRequestError.
    """
    if not uri:
        return None
    try:
        bucket, key = split_uri(uri)
    except RequestValidationError:
        return None
    try:
        found, content = s3.read_json_if_exists(bucket, key)
    except AwsRequestError as exc:
        if exc.code not in ("AccessDenied", "403", "Forbidden"):
            raise
        logger.warning("S3 object not readable", extra={"uri": uri, "error": str(exc)})
        return None
    if not found:
        return None
    try:
        return json.loads(content)
    except ValueError:
        logger.warning("not a JSON document", extra={"uri": uri})
        return None


def read_history(s3: S3Storage | None, package: dict[str, Any]) -> list[dict[str, str]]:
    """The whole approval history of a package (the S3 copy merged with the metadata's newest entries)."""
    metadata = package_metadata(package)
    in_metadata = parse_history(metadata.get(HISTORY_KEY))
    stored = _entries(_read_json(s3, metadata.get(HISTORY_URI_KEY))) if s3 is not None else []
    return merge_history(stored, in_metadata)


def record_decision(
    sagemaker: SageMaker,
    s3: S3Storage | None,
    package_arn: str,
    *,
    status: str,
    description: str,
    entry: dict[str, str],
    reports_bucket: str | None = None,
    package: dict[str, Any] | None = None,
) -> tuple[list[dict[str, str]], str | None]:
    """Set the package's approval status and description and append ``entry`` to its approval history, in one
    UpdateModelPackage call; then write the full history to S3 (when ``s3`` is given). Returns the full history
    and its URI.

    A failed S3 write is logged, not raised: the status and the metadata history are already recorded, and the
    next decision writes the merged history again.

    Raises:
        ResourceNotFoundError: no such package.
        TransientAwsError, AwsRequestError.
    """
    package = package or sagemaker.describe_model_package(package_arn)
    metadata = package_metadata(package)
    history = merge_history(read_history(s3, package), [entry])
    group = str(package.get("ModelPackageGroupName") or "")
    uri = history_uri(metadata, group, _version_of(package), reports_bucket) if s3 is not None else None
    uri = uri or metadata.get(HISTORY_URI_KEY)
    updates = {HISTORY_KEY: trim_history(history)}
    if uri:
        updates[HISTORY_URI_KEY] = uri
    sagemaker.update_model_package(package_arn, status=status, description=description, metadata=updates)
    if s3 is not None and uri:
        try:
            bucket, key = split_uri(uri)
            s3.put_json(bucket, key, {"model_package_arn": package_arn, "approval_history": history})
        except FmopsError as exc:
            logger.warning("approval history not written to S3", extra={"uri": uri, "error": str(exc)})
    logger.info("model package decision recorded", extra={"arn": package_arn, "status": status})
    return history, uri


# ------------------------------------------------------------------------------------------ paired test


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def read_predictions(s3: S3Storage, uri: str) -> dict[int, tuple[str, str]]:
    """``{line: (reference, fine-tuned prediction)}`` from an evaluation's predictions.jsonl (streamed).

    Raises:
        ResourceNotFoundError: no such file.
        ValueError: a malformed line.
        TransientAwsError, AwsRequestError.
    """
    from fmops.data.jsonl import HashingLineReader

    bucket, key = split_uri(uri)
    rows: dict[int, tuple[str, str]] = {}
    for line_no, raw in HashingLineReader(s3.open(bucket, key).iter_chunks()):
        if not raw.strip():
            continue
        row = json.loads(raw)
        if not isinstance(row, dict) or "reference" not in row or "finetuned" not in row:
            raise ValueError(f"{uri} line {line_no}: expected an object with 'reference' and 'finetuned'")
        number = row.get("line")
        rows[number if isinstance(number, int) else line_no] = (_label(row["reference"]), _label(row["finetuned"]))
    return rows


def _strings(value: Any, where: str, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: field '{field}' must be a string or a list of strings")
    return list(value)


def read_task_predictions(s3: S3Storage, uri: str, task: str) -> dict[int, tuple[list[str], Any]]:
    """``{line: (references, fine-tuned output)}`` from a multilabel or generative evaluation's predictions.jsonl
    (streamed): multilabel references and outputs are label lists (sorted); generative references are the gold texts
    and the output the generated text.

    Raises:
        ResourceNotFoundError: no such file.
        ValueError: a malformed line (naming it and the field).
        TransientAwsError, AwsRequestError.
    """
    from fmops.data.jsonl import HashingLineReader

    bucket, key = split_uri(uri)
    rows: dict[int, tuple[list[str], Any]] = {}
    for line_no, raw in HashingLineReader(s3.open(bucket, key).iter_chunks()):
        if not raw.strip():
            continue
        row = json.loads(raw)
        where = f"{uri} line {line_no}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object")
        for field in ("reference", "finetuned"):
            if field not in row:
                raise ValueError(f"{where}: field '{field}' is missing")
        references = _strings(row["reference"], where, "reference")
        output: Any
        if task == "multilabel":
            references = sorted(references)
            output = sorted(_strings(row["finetuned"], where, "finetuned"))
        elif isinstance(row["finetuned"], str):
            output = row["finetuned"]
        else:
            raise ValueError(f"{where}: field 'finetuned' must be the generated text (a string)")
        number = row.get("line")
        rows[number if isinstance(number, int) and not isinstance(number, bool) else line_no] = (references, output)
    return rows


def _ordered(task: str, metrics: Any) -> dict[str, Any]:
    """``metrics`` in the task's order (``summary_names``: the gate metrics first)."""
    found = _mapping(metrics)
    return {name: found[name] for name in summary_names(task, found) if name in found}


def compared_metric(task: str, lineages: Sequence[dict[str, Any]]) -> str:
    """The gate metric two or more versions of ``task`` are compared on: the one they all gated on (their
    evaluation's ``metric``), else the task's default."""
    recorded = {(lineage.get("metrics") or {}).get("metric") for lineage in lineages}
    if len(recorded) == 1:
        (metric,) = recorded
        if isinstance(metric, str) and metric in TASK_METRICS.get(task, ()):
            return metric
    return TASK_METRICS[task][0]


def _mcnemar_test(a: int, b: int, references: list[str], outputs_a: list[str], outputs_b: list[str]) -> dict[str, Any]:
    """McNemar's test on the per-example correctness of two classifiers (a, b: their versions)."""
    from fmops.metrics.stats import mcnemar  # pure Python; imported only when a pair is tested

    correct_a = [p == r for r, p in zip(references, outputs_a, strict=True)]
    correct_b = [p == r for r, p in zip(references, outputs_b, strict=True)]
    result = mcnemar(correct_a, correct_b)
    both = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if x and y)
    significant = result.p_value < SIGNIFICANCE
    better = None
    if significant and result.b != result.c:
        better = a if result.b > result.c else b
    return {
        "name": "mcnemar",
        "method": result.method,
        "statistic": result.statistic,
        "examples": len(references),
        "only_a_correct": result.b,
        "only_b_correct": result.c,
        "both_correct": both,
        "both_wrong": len(references) - both - result.b - result.c,
        "p_value": result.p_value,
        "alpha": SIGNIFICANCE,
        "significant": significant,
        "better": better,
    }


def _bootstrap_test(
    task: str, metric: str, a: int, b: int, references: list[Any], outputs_a: list[Any], outputs_b: list[Any]
) -> dict[str, Any]:
    """Koehn's paired bootstrap of ``metric`` for two versions of a multilabel or generative task, with the same
    statistic, seed and number of resamples as the workflow's evaluation (``fmops.lifecycle.evaluation``)."""
    # Pure Python, imported only when a pair is tested.
    from fmops.lifecycle.evaluation import BOOTSTRAP_SEED, bootstrap_resamples, task_statistic
    from fmops.metrics.stats import paired_bootstrap_test

    n = len(references)
    statistic_a = task_statistic(task, metric, references, outputs_a)
    statistic_b = task_statistic(task, metric, references, outputs_b)
    resamples = bootstrap_resamples(n)
    result = paired_bootstrap_test(
        n, statistic_a, statistic_b, resamples=resamples, seed=BOOTSTRAP_SEED, alpha=1 - BOOTSTRAP_CONFIDENCE
    )
    significant = result.low > 0 or result.high < 0
    everything = list(range(n))
    return {
        "name": "paired_bootstrap",
        "metric": metric,
        "examples": n,
        "a_value": statistic_a(everything),
        "b_value": statistic_b(everything),
        "delta": result.delta,
        "delta_ci": [result.low, result.high],
        "confidence": BOOTSTRAP_CONFIDENCE,
        "p_value": result.p_value,
        "p_value_is": f"one-sided: the probability that v{b} is not better than v{a}",
        "resamples": resamples,
        "alpha": SIGNIFICANCE,
        "significant": significant,
        "better": (b if result.low > 0 else a) if significant else None,
    }


# ------------------------------------------------------------------------------------------------ registry


class Registry:
    """Read and decide the versions of a use case's model package group.

    ``reports_bucket`` is where approval histories go for packages registered without a lineage URI;
    ``approvals`` (the workflow's approvals table), when given, makes ``decide`` refuse a version whose run is
    still waiting for its workflow approval.
    """

    def __init__(
        self,
        sagemaker: SageMaker,
        s3: S3Storage,
        *,
        reports_bucket: str | None = None,
        approvals: Table | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.sagemaker = sagemaker
        self.s3 = s3
        self.reports_bucket = reports_bucket
        self.approvals = approvals
        self.clock = clock

    # ---------------------------------------------------------------------------------------- lookups

    def _group(self, group: str) -> dict[str, Any]:
        validate_group(group)
        found = self.sagemaker.describe_model_package_group(group)
        if found is None:
            raise ResourceNotFoundError(f"no model package group {group}")
        return found

    def _packages(self, group: str, versions: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The described packages of ``versions`` (one listing of the group).

        Raises:
            ResourceNotFoundError: unknown group, or a version it does not have.
        """
        self._group(group)
        wanted = [validate_version(v) for v in versions]
        arns = {_version_of(s): str(s["ModelPackageArn"]) for s in self.sagemaker.list_model_packages(group)}
        missing = [v for v in wanted if v not in arns]
        if missing:
            listed = ", ".join(str(v) for v in missing)
            raise ResourceNotFoundError(f"model package group {group} has no version {listed}")
        return {v: self.sagemaker.describe_model_package(arns[v]) for v in wanted}

    def _package(self, group: str, version: int) -> dict[str, Any]:
        return self._packages(group, [version])[validate_version(version)]

    # ---------------------------------------------------------------------------------------- reading

    def list_versions(self, group: str) -> list[dict[str, Any]]:
        """Every version of the group, newest first: version, arn, status, created, run_id, backend, task, the
        task's headline metrics (``headline_metrics``) and report URI (one DescribeModelPackage per version: metadata
        is not in the listing).

        Raises:
            ResourceNotFoundError: unknown group.
            RequestValidationError: not a group name.
            TransientAwsError, AwsRequestError.
        """
        self._group(group)
        rows: list[dict[str, Any]] = []
        for summary in self.sagemaker.list_model_packages(group):
            package = self.sagemaker.describe_model_package(str(summary["ModelPackageArn"]))
            metadata = package_metadata(package)
            rows.append(
                {
                    "version": _version_of(package) or _version_of(summary),
                    "arn": str(summary["ModelPackageArn"]),
                    "status": package.get("ModelApprovalStatus") or summary.get("ModelApprovalStatus"),
                    "created": _when(package.get("CreationTime") or summary.get("CreationTime")),
                    "run_id": metadata.get("run_id"),
                    "backend": metadata.get("backend"),
                    "task": version_task(metadata),
                    "metrics": headline_metrics(metadata),
                    "report_uri": metadata.get("report_uri"),
                }
            )
        rows.sort(key=lambda r: int(r["version"] or 0), reverse=True)
        return rows

    def show(self, group: str, version: int) -> dict[str, Any]:
        """Everything about one version: status, metadata, metrics, inference spec summary, approval history.

        Raises:
            ResourceNotFoundError: unknown group or version.
            RequestValidationError: not a group name or version.
            TransientAwsError, AwsRequestError.
        """
        package = self._package(group, version)
        metadata = package_metadata(package)
        statistics = ((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}
        return {
            "group": group,
            "version": _version_of(package),
            "arn": package.get("ModelPackageArn"),
            "status": package.get("ModelApprovalStatus"),
            "approval_description": package.get("ApprovalDescription"),
            "description": package.get("ModelPackageDescription"),
            "created": _when(package.get("CreationTime")),
            "modified": _when(package.get("LastModifiedTime")),
            "run_id": metadata.get("run_id"),
            "backend": metadata.get("backend"),
            "task": version_task(metadata),
            "base_model": metadata.get("base_model"),
            "metrics": headline_metrics(metadata),
            "metadata": {k: v for k, v in metadata.items() if k != HISTORY_KEY},
            "inference": inference_summary(package),
            "model_quality_statistics_uri": statistics.get("S3Uri"),
            "report_uri": metadata.get("report_uri"),
            "lineage_uri": metadata.get("lineage_uri"),
            "approval_history_uri": metadata.get(HISTORY_URI_KEY),
            "approval_history": read_history(self.s3, package),
        }

    def lineage(self, group: str, version: int) -> dict[str, Any]:
        """Where the version comes from: data set (URI, S3 version id, sha256, manifest, test split sha256),
        hyperparameters, base model, training job or Bedrock customization job (+ custom model), code sha256,
        metrics, report, approval history. Read from the metadata and the lineage JSON in S3.

        Raises:
            ResourceNotFoundError: unknown group or version.
            RequestValidationError: not a group name or version.
            TransientAwsError, AwsRequestError.
        """
        return self._lineage(group, self._package(group, version))

    def _lineage(self, group: str, package: dict[str, Any]) -> dict[str, Any]:
        metadata = package_metadata(package)
        document = _read_json(self.s3, metadata.get("lineage_uri"))
        stored: dict[str, Any] = document if isinstance(document, dict) else {}
        dataset, training = _mapping(stored.get("dataset")), _mapping(stored.get("training"))
        evaluation, code = _mapping(stored.get("evaluation")), _mapping(stored.get("code"))
        backend = stored.get("backend") or training.get("backend") or metadata.get("backend")
        job_arn = training.get("job_arn") or metadata.get("training_job_arn")
        hyperparameters = stored.get("hyperparameters")
        if not isinstance(hyperparameters, dict):
            try:
                parsed = json.loads(metadata.get("hyperparameters", ""))
            except ValueError:
                parsed = None
            hyperparameters = parsed if isinstance(parsed, dict) else None
        task = version_task(metadata)
        headline = headline_metrics(metadata)
        names = headline_names(task)
        finetuned = _ordered(task, evaluation.get("finetuned_metrics") or {name: headline[name] for name in names})
        base = _ordered(task, evaluation.get("base_metrics") or {name: headline[f"base_{name}"] for name in names})
        return {
            "group": group,
            "version": _version_of(package),
            "arn": package.get("ModelPackageArn"),
            "status": package.get("ModelApprovalStatus"),
            "run_id": stored.get("run_id") or metadata.get("run_id"),
            "backend": backend,
            "task": task,
            "registered_at": stored.get("registered_at") or _when(package.get("CreationTime")),
            "dataset": {
                "uri": dataset.get("source_uri") or metadata.get("dataset_uri"),
                "version_id": dataset.get("version_id") or metadata.get("dataset_version_id") or None,
                "sha256": dataset.get("sha256") or metadata.get("dataset_sha256"),
                "manifest_uri": dataset.get("manifest_uri") or metadata.get("manifest_uri"),
                "test_uri": dataset.get("test_uri"),
                "test_sha256": dataset.get("test_sha256") or metadata.get("test_sha256") or None,
                "split_sha256": dataset.get("split_sha256") or {},
                "counts": dataset.get("counts"),
                "labels": dataset.get("labels"),
            },
            "hyperparameters": hyperparameters,
            "base_model": stored.get("base_model") or metadata.get("base_model"),
            "training": {
                "job_name": training.get("job_name"),
                "job_arn": job_arn,
                "training_job_arn": job_arn if backend != "bedrock" else None,
                "customization_job_arn": job_arn if backend == "bedrock" else None,
                "custom_model_arn": training.get("custom_model_arn") or metadata.get("custom_model_arn"),
                "model_artifacts_uri": training.get("model_artifacts_uri"),
            },
            "code": {
                "uri": code.get("uri"),
                "sha256": code.get("sha256") or metadata.get("code_sha256") or None,
                "version_id": code.get("version_id"),
            },
            "metrics": {
                "metric": evaluation.get("metric"),
                "finetuned": finetuned,
                "base": base,
                "test_count": evaluation.get("test_count"),
            },
            "report_uri": evaluation.get("report_uri") or metadata.get("report_uri"),
            "evaluation_uri": evaluation.get("evaluation_uri") or metadata.get("evaluation_uri"),
            "lineage_uri": metadata.get("lineage_uri"),
            "lineage_found": bool(stored),
            "approval_history_uri": metadata.get(HISTORY_URI_KEY),
            "approval_history": read_history(self.s3, package),
        }

    # ---------------------------------------------------------------------------------------- compare

    def compare(self, group: str, versions: list[int]) -> dict[str, Any]:
        """The versions' metrics side by side (their task's: ``summary_names``) and, for each pair evaluated on the
        same test split (the same test file sha256), a paired test on the fine-tuned predictions, paired by test line:

        - classification: McNemar's test (``fmops.metrics.stats.mcnemar``: exact binomial below 25 discordant pairs,
          continuity-corrected chi-square above) on per-example correctness;
        - the other tasks (label sets or generated texts, where "correct" means nothing): Koehn's paired bootstrap
          (``fmops.metrics.stats.paired_bootstrap_test``) of the task's gate metric (``metric``: the one both
          versions gated on, else the task's default), computed as the evaluation computes it: ``delta`` = b minus a,
          its 95% interval, the one-sided p-value that b is not better; significant when the interval excludes 0.

        Raises:
            ResourceNotFoundError: unknown group or version.
            RequestValidationError: fewer than 2 or more than 10 versions, not version numbers, or versions of
                different tasks (field ``versions``).
            TransientAwsError, AwsRequestError.
        """
        wanted = check_compared(versions)
        packages = self._packages(group, wanted)
        lineages = {v: self._lineage(group, packages[v]) for v in wanted}
        tasks = {v: str(lineages[v]["task"]) for v in wanted}
        if len(set(tasks.values())) > 1:
            listed = ", ".join(f"v{v} {task}" for v, task in tasks.items())
            raise RequestValidationError(
                f"versions of different tasks cannot be compared ({listed}): their metrics and predictions differ; "
                "compare versions of one task",
                field="versions",
            )
        task = tasks[wanted[0]]
        metric = None if task == DEFAULT_TASK else compared_metric(task, [lineages[v] for v in wanted])
        rows = []
        for v in wanted:
            lineage = lineages[v]
            rows.append(
                {
                    "version": v,
                    "arn": lineage["arn"],
                    "status": lineage["status"],
                    "run_id": lineage["run_id"],
                    "backend": lineage["backend"],
                    "task": task,
                    "dataset_sha256": lineage["dataset"]["sha256"],
                    "test_sha256": lineage["dataset"]["test_sha256"],
                    "test_count": lineage["metrics"]["test_count"],
                    "metrics": {**lineage["metrics"]["finetuned"]},
                    "base_metrics": {**lineage["metrics"]["base"]},
                }
            )
        present = {name for r in rows for name, value in r["metrics"].items() if _float(value) is not None}
        names = [n for n in summary_names(task, present) if any(_float(r["metrics"].get(n)) is not None for r in rows)]
        side_by_side = {name: {str(r["version"]): _float(r["metrics"].get(name)) for r in rows} for name in names}
        cache: dict[int, dict[int, tuple[Any, Any]] | str] = {}
        pairs = []
        for i, a in enumerate(wanted):
            for b in wanted[i + 1 :]:
                pairs.append(self._pair(task, metric, lineages[a], lineages[b], cache))
        return {
            "group": group,
            "task": task,
            "test": "mcnemar" if task == DEFAULT_TASK else "paired_bootstrap",
            "metric": metric,
            "versions": rows,
            "metrics": side_by_side,
            "paired_tests": pairs,
        }

    def _predictions(
        self, task: str, lineage: dict[str, Any], cache: dict[int, dict[int, tuple[Any, Any]] | str]
    ) -> Any:
        version = int(lineage["version"])
        if version not in cache:
            evaluation = _read_json(self.s3, lineage.get("evaluation_uri"))
            uri = evaluation.get("predictions_uri") if isinstance(evaluation, dict) else None
            if not uri:
                cache[version] = f"version {version} has no per-example predictions (no evaluation.json)"
            else:
                try:
                    if task == DEFAULT_TASK:
                        cache[version] = dict(read_predictions(self.s3, str(uri)))
                    else:
                        cache[version] = dict(read_task_predictions(self.s3, str(uri), task))
                except (ResourceNotFoundError, RequestValidationError, ValueError) as exc:
                    cache[version] = f"version {version}: per-example predictions not readable: {exc}"
        return cache[version]

    def _pair(
        self,
        task: str,
        metric: str | None,
        a: dict[str, Any],
        b: dict[str, Any],
        cache: dict[int, dict[int, tuple[Any, Any]] | str],
    ) -> dict[str, Any]:
        pair: dict[str, Any] = {"a": a["version"], "b": b["version"], "same_test_split": False, "test": None}
        split_a, split_b = a["dataset"]["test_sha256"], b["dataset"]["test_sha256"]
        if not split_a or not split_b:
            pair["reason"] = "the test split sha256 is not recorded for both versions (registered before it was)"
            return pair
        if split_a != split_b:
            pair["reason"] = "evaluated on different test splits (test sha256 differs)"
            return pair
        pair["same_test_split"] = True
        first, second = self._predictions(task, a, cache), self._predictions(task, b, cache)
        for found in (first, second):
            if isinstance(found, str):
                pair["reason"] = found
                return pair
        common = sorted(set(first) & set(second))
        if not common:
            pair["reason"] = "the two evaluations share no test example"
            return pair
        references: list[Any] = []
        outputs_a: list[Any] = []
        outputs_b: list[Any] = []
        for line in common:
            (reference, predicted_a), (reference_b, predicted_b) = first[line], second[line]
            if reference != reference_b:
                what = "reference label" if task == DEFAULT_TASK else "references"
                pair["reason"] = f"the predictions disagree on the {what} of test line {line}"
                return pair
            references.append(reference)
            outputs_a.append(predicted_a)
            outputs_b.append(predicted_b)
        if task == DEFAULT_TASK:
            pair["test"] = _mcnemar_test(a["version"], b["version"], references, outputs_a, outputs_b)
        else:
            assert metric is not None
            pair["test"] = _bootstrap_test(task, metric, a["version"], b["version"], references, outputs_a, outputs_b)
        pair["reason"] = None
        return pair

    # ---------------------------------------------------------------------------------------- decide

    def decide(self, group: str, version: int, decision: RegistryDecision, reason: str, who: str) -> dict[str, Any]:
        """Approve or reject a version: ModelApprovalStatus Approved/Rejected with an ApprovalDescription, and an
        entry ``{who, when, decision, reason}`` appended to its approval history.

        Raises:
            RequestValidationError: an empty reason, an unknown decision, no caller, a bad group or version.
            ResourceNotFoundError: unknown group or version.
            WorkflowApprovalPendingError: the version's run waits for its workflow approval.
            TransientAwsError, AwsRequestError.
        """
        if decision not in STATUS_BY_DECISION:
            raise RequestValidationError(f"decision must be approve or reject, not {decision!r}", field="decision")
        reason = (reason or "").strip()
        if not reason:
            raise RequestValidationError("reason must not be empty", field="reason")
        if not who:
            raise RequestValidationError("the caller (who) is required", field="who")
        package = self._package(group, version)
        arn = str(package["ModelPackageArn"])
        metadata = package_metadata(package)
        run_id = metadata.get("run_id")
        previous = package.get("ModelApprovalStatus")
        if (
            self.approvals is not None
            and run_id
            and previous == "PendingManualApproval"
            and self.approvals.get(run_id) is not None
        ):
            raise WorkflowApprovalPendingError(
                f"version {version} of {group} is waiting for the workflow approval of run {run_id}: "
                f"decide it with `fmops {decision} {run_id}` (POST /approvals/{run_id}/{decision})"
            )
        when = iso(self.clock())
        past = PAST_TENSE[decision]
        status = STATUS_BY_DECISION[decision]
        history, uri = record_decision(
            self.sagemaker,
            self.s3,
            arn,
            status=status,
            description=f"{past} by {who}: {reason}",
            entry=history_entry(who, when, past, reason),
            reports_bucket=self.reports_bucket,
            package=package,
        )
        logger.info("model version decided", extra={"group": group, "version": version, "decision": past})
        return {
            "group": group,
            "version": validate_version(version),
            "arn": arn,
            "previous_status": previous,
            "status": status,
            "decision": past,
            "who": who,
            "when": when,
            "reason": reason,
            "approval_history_uri": uri,
            "approval_history": history,
        }
