"""Plan the evaluation job, then compute base vs fine-tuned (vs champion) metrics with confidence intervals and
paired tests, and write evaluation.json, metrics.csv, predictions.jsonl and report.html.

What a person can trust in the numbers:

- every headline metric has a seeded percentile bootstrap 95% interval (``fmops.metrics.compute_metrics``);
- the fine-tuned model is compared with the base model and with the current champion (the newest Approved
  package of the use case's group trained for the same task, evaluated by the same processing job on the same
  test split) by a paired bootstrap of the gate metric (``fmops.metrics.stats``) and, for classification, by
  McNemar's test on per-example correctness;
- the same seed and the same predictions always give the same numbers.

Per task (the run's ``task``; evaluate.py writes one predictions.jsonl line per test record):

- ``classification``: labels; accuracy, macro/weighted precision, recall, F1; per-class scores, confusion matrices;
- ``multilabel``: label lists; subset accuracy, Hamming loss, micro/macro/samples F1; per-label scores;
- ``summarization``: generated texts; ROUGE-1/2/L/Lsum (stemmed) against the reference summary;
- ``qa``: generated answers; SQuAD exact match and token F1 (0-100) against every gold answer;
- ``chat``: generated replies; ROUGE and SQuAD exact match / token F1 against the reference reply.

The worst examples are the fine-tuned model's lowest per-example scores of the gate metric (classification: its
most confident mistakes).
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from fmops.aws.bedrock import BedrockRuntime
from fmops.aws.s3 import S3Storage, s3_uri, split_uri
from fmops.aws.sagemaker import SageMaker
from fmops.bedrock_models import generated_text, invocation_body, transcript
from fmops.config import CommonSettings, PlanEvaluationSettings
from fmops.data.formats import GenerativeExample, RecordFormatError, classification_prompt, generative_example
from fmops.data.jsonl import HashingLineReader, parse_classification_line
from fmops.errors import (
    AwsRequestError,
    DatasetValidationError,
    EvaluationError,
    MetricInputError,
    ResourceNotFoundError,
)
from fmops.lifecycle._common import CODE_KEY, Clock, iso, run_tags, utcnow
from fmops.lifecycle.registry import champion, find_run_package, package_task
from fmops.lifecycle.report import render_report
from fmops.lifecycle.training import supports_volume_kms
from fmops.metrics import HEADLINE_METRICS, compute_metrics, confusion_matrix, mcnemar, per_class_scores
from fmops.metrics.classification import averages_from_counts, classification_report, prf_from_counts
from fmops.metrics.compute import classification_statistics
from fmops.metrics.multilabel import sample_scores
from fmops.metrics.qa import exact_match, token_f1
from fmops.metrics.rouge import ROUGE_TYPES, rouge_scores
from fmops.metrics.stats import Statistic, mean_of, paired_bootstrap_test
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
from fmops.schemas.run import GENERATIVE_TASKS, MetricName, RunRequest
from fmops.schemas.steps import (
    DatasetInfo,
    EvaluateEvent,
    EvaluationResult,
    EvaluationSpec,
    MetricSummary,
    PairedTest,
    TrainingResult,
)

PROCESSING_ROOT = "/opt/ml/processing"
CHAMPION_CHANNEL = "champion"
BASE_MODEL_CHANNEL = "base_model"
# SageMaker copies inputs but does not unpack archives: the entry point unpacks the models and the code.
ENTRYPOINT_SCRIPT = (
    "set -e; "
    f"for d in {PROCESSING_ROOT}/model {PROCESSING_ROOT}/{CHAMPION_CHANNEL}; do "
    'if [ -f "$d/model.tar.gz" ]; then tar xzf "$d/model.tar.gz" -C "$d"; fi; done; '
    f'cd {PROCESSING_ROOT}/code && tar xzf sourcedir.tar.gz && exec python3 evaluate.py "$@"'
)
PREDICTIONS_FILE = "predictions.jsonl"
EVALUATION_FILE = "evaluation.json"
METRICS_CSV_FILE = "metrics.csv"
REPORT_FILE = "report.html"
MAX_BEDROCK_RECORDS = 500

# The bootstrap: seeded, so the same predictions always give the same intervals and p-values.
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
ALPHA = 0.05
MAX_RESAMPLES = 1000
MIN_RESAMPLES = 200
# Resamples x test examples per model: large test splits get fewer resamples (never fewer than MIN_RESAMPLES).
RESAMPLE_BUDGET = 20_000_000
WORST_EXAMPLES = 20
EXAMPLE_TEXT_CHARS = 1000
MODELS = ("base", "finetuned", "champion")
MODEL_NAMES = {"base": "base model", "finetuned": "fine-tuned model", "champion": "champion"}
QA_METRICS = ("exact_match", "f1")
# What evaluation.json, metrics.csv and the report show per task (the gate metrics are a subset: TASK_METRICS).
TASK_EVALUATION_METRICS: dict[str, tuple[str, ...]] = {
    "classification": HEADLINE_METRICS["classification"],
    "multilabel": HEADLINE_METRICS["multilabel"],
    "summarization": ROUGE_TYPES,
    "qa": QA_METRICS,
    "chat": (*ROUGE_TYPES, *QA_METRICS),
}
# Bedrock: tokens generated per answer of a generative task (the run's ``max_new_tokens`` hyperparameter wins).
BEDROCK_MAX_NEW_TOKENS = 256


def evaluation_metrics(task: str) -> tuple[str, ...]:
    """The metrics evaluation.json and metrics.csv hold for ``task``."""
    return TASK_EVALUATION_METRICS[task]


def evaluation_job_name(run_id: str) -> str:
    return f"{run_id}-eval"


# -------------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Champion:
    """The model evaluated beside the fine-tuned one: ``arn`` and ``model_uri`` (None when none), ``note`` why not."""

    arn: str | None = None
    model_uri: str | None = None
    note: str | None = None


def find_champion(sagemaker: SageMaker, run: RunRequest) -> Champion:
    """The newest Approved package of the use case's group other than this run's, when it has a model artifact.

    A Bedrock champion (no ``ModelDataUrl``) is skipped. A refused lookup (AccessDenied...) is logged and the
    evaluation goes on without a champion (the quality gate still compares the champion's recorded metric).

    Raises:
        TransientAwsError: retried by the state machine.
    """
    group = run.use_case
    try:
        own = find_run_package(sagemaker, group, run.run_id)
        package = champion(sagemaker, group, str(own["ModelPackageArn"]) if own else "")
    except AwsRequestError as exc:
        logger.warning("champion lookup refused", extra={"run_id": run.run_id, "group": group, "error": str(exc)})
        return Champion(note=f"the champion could not be looked up ({exc}); evaluated without it")
    if package is None:
        return Champion(note=f"no approved model in group {group} yet")
    arn = str(package["ModelPackageArn"])
    trained_for = package_task(package)
    if trained_for != run.task:
        return Champion(note=f"champion {arn} was trained for task {trained_for}, not {run.task}: not evaluated here")
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    uri = next((str(c["ModelDataUrl"]) for c in containers if c.get("ModelDataUrl")), None)
    if not uri:
        return Champion(note=f"champion {arn} has no model artifact (a Bedrock custom model): not evaluated here")
    return Champion(arn=arn, model_uri=uri)


def plan_evaluation(
    run: RunRequest,
    dataset: DatasetInfo,
    training: TrainingResult,
    *,
    settings: PlanEvaluationSettings,
    sagemaker: SageMaker | None = None,
) -> EvaluationSpec:
    """The CreateProcessingJob request that runs evaluate.py on the test split (job ``<run_id>-eval``).

    With ``sagemaker``, the current champion (:func:`find_champion`) is looked up and, when it has a model
    artifact, added as the processing input ``champion`` (``--champion-model-dir``): the job predicts the test
    split with it too. Without ``sagemaker`` nothing is looked up (base and fine-tuned only).

    Raises:
        EvaluationError: the training result has no model artifacts.
        TransientAwsError: the champion lookup failed for a reason a retry can fix.
    """
    if not training.model_artifacts_uri:
        raise EvaluationError(f"training job {training.job_name} reported no model artifacts")
    best = find_champion(sagemaker, run) if sagemaker is not None else Champion(note="no champion lookup")
    output_uri = f"s3://{settings.artifacts_bucket}/evaluation/{run.run_id}/"
    code_uri = f"s3://{settings.artifacts_bucket}/{CODE_KEY}"
    kms = settings.kms_key_arn

    def channel(name: str, uri: str) -> ProcessingInput:
        return ProcessingInput(input_name=name, s3_input=S3Input(s3_uri=uri, local_path=f"{PROCESSING_ROOT}/{name}"))

    inputs = [
        channel("model", training.model_artifacts_uri),
        channel("test", dataset.test_uri),
        channel("code", code_uri),
    ]
    arguments = [
        "--model-dir",
        f"{PROCESSING_ROOT}/model",
        "--test",
        f"{PROCESSING_ROOT}/test",
        "--output",
        f"{PROCESSING_ROOT}/output",
    ]
    if run.base_model.startswith("s3://"):
        # evaluate.py reads an S3 base model from the folder beside --model-dir (as training reads its channel).
        inputs.append(channel(BASE_MODEL_CHANNEL, run.base_model))
    if best.model_uri:
        inputs.append(channel(CHAMPION_CHANNEL, best.model_uri))
        arguments += ["--champion-model-dir", f"{PROCESSING_ROOT}/{CHAMPION_CHANNEL}"]
    environment = {"FMOPS_RUN_ID": run.run_id, "FMOPS_BASE_MODEL": run.base_model}
    if best.arn:
        environment["FMOPS_CHAMPION_ARN"] = best.arn

    request = CreateProcessingJobRequest(
        processing_job_name=evaluation_job_name(run.run_id),
        role_arn=settings.sagemaker_role_arn,
        processing_inputs=inputs,
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
            container_arguments=arguments,
        ),
        network_config=NetworkConfig(
            enable_network_isolation=True,
            vpc_config=VpcConfig(
                security_group_ids=[settings.training_security_group_id], subnets=list(settings.subnet_ids)
            ),
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=min(run.max_runtime_seconds, 6 * 3600)),
        environment=environment,
        tags=[Tag.model_validate(t) for t in run_tags(run, settings.stack_name)],
    )
    return EvaluationSpec(
        job_name=request.processing_job_name,
        output_uri=output_uri,
        sagemaker=request.dump(),
        champion_arn=best.arn if best.model_uri else None,
        champion_note=best.note,
    )


# ------------------------------------------------------------------------------------------- predictions


class Prediction(NamedTuple):
    """One test example: its reference label and each model's prediction (``champion`` None without one)."""

    line: int
    text: str
    reference: str
    base: str
    finetuned: str
    champion: str | None = None
    finetuned_score: float | None = None

    def as_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "line": self.line,
            "text": self.text,
            "reference": self.reference,
            "base": self.base,
            "finetuned": self.finetuned,
        }
        if self.finetuned_score is not None:
            row["finetuned_score"] = self.finetuned_score
        if self.champion is not None:
            row["champion"] = self.champion
        return row


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _score(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_predictions(s3: S3Storage, uri: str) -> Iterator[Prediction]:
    """Each line of evaluate.py's predictions.jsonl (streamed); ``champion`` is read when the line has it.

    Raises:
        EvaluationError: missing file or a malformed line (named by its number).
    """
    bucket, key = split_uri(uri)
    try:
        stream = s3.open(bucket, key)
    except ResourceNotFoundError as exc:
        raise EvaluationError(f"the evaluation job wrote no {PREDICTIONS_FILE} at {uri}") from exc
    try:
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
            number = row.get("line")
            yield Prediction(
                line=number if isinstance(number, int) and not isinstance(number, bool) else line_no,
                text=str(row.get("text", "")),
                reference=_label(row["reference"]),
                base=_label(row["base"]),
                finetuned=_label(row["finetuned"]),
                champion=None if row.get("champion") is None else _label(row["champion"]),
                finetuned_score=_score(row.get("finetuned_score")),
            )
    except DatasetValidationError as exc:
        raise EvaluationError(f"{uri}: {exc}") from exc


def parse_generated_label(response: dict[str, Any], labels: list[str]) -> str:
    """The label in a Bedrock text-generation response (any family: ``fmops.bedrock_models.generated_text``)."""
    text = generated_text(response)
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
) -> Iterator[Prediction]:
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
        body = invocation_body(run.base_model, prompt)  # the custom model takes its base model's body
        base = parse_generated_label(runtime.invoke_json(run.base_model, body), dataset.labels)
        tuned = parse_generated_label(runtime.invoke_json(model_id, body), dataset.labels)
        yield Prediction(line=line_no, text=record.text, reference=record.label, base=base, finetuned=tuned)


@dataclass
class Collected:
    """The predictions, column by column, the worst fine-tuned mistakes, and the normalised predictions.jsonl."""

    lines: list[int] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    base: list[str] = field(default_factory=list)
    finetuned: list[str] = field(default_factory=list)
    champion: list[str] | None = None
    worst: list[tuple[float, int, int, dict[str, Any]]] = field(default_factory=list)  # min-heap
    file: IO[bytes] = field(default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024))

    @property
    def count(self) -> int:
        return len(self.references)

    def predictions(self) -> dict[str, list[str]]:
        found = {"base": self.base, "finetuned": self.finetuned}
        if self.champion is not None:
            found["champion"] = self.champion
        return found

    def worst_examples(self) -> list[dict[str, Any]]:
        """The fine-tuned model's most confident mistakes first (in line order when it gave no scores)."""
        return [example for *_, example in sorted(self.worst, reverse=True)]


def collect(rows: Iterator[Prediction], source: str, *, expect_champion: bool) -> Collected:
    """Read every prediction once: columns for the metrics, a bounded heap of mistakes, the JSONL copy.

    Raises:
        EvaluationError: no predictions, or champion predictions on some lines only (or missing when expected).
    """
    out = Collected()
    for index, row in enumerate(rows):
        has_champion = row.champion is not None
        if index == 0 and has_champion:
            out.champion = []
        if (out.champion is not None) != has_champion:
            raise EvaluationError(f"{source} line {row.line}: field 'champion' is missing on some lines only")
        out.lines.append(row.line)
        out.references.append(row.reference)
        out.base.append(row.base)
        out.finetuned.append(row.finetuned)
        if out.champion is not None and row.champion is not None:
            out.champion.append(row.champion)
        out.file.write(json.dumps(row.as_json(), ensure_ascii=False).encode() + b"\n")
        if row.finetuned != row.reference:
            example = row.as_json()
            example["text"] = row.text[:EXAMPLE_TEXT_CHARS]
            score = -1.0 if row.finetuned_score is None else row.finetuned_score
            entry = (score, -row.line, -index, example)
            if len(out.worst) < WORST_EXAMPLES:
                heapq.heappush(out.worst, entry)
            elif entry[:3] > out.worst[0][:3]:
                heapq.heapreplace(out.worst, entry)
    if not out.references:
        raise EvaluationError(f"no predictions in {source}")
    if expect_champion and out.champion is None:
        raise EvaluationError(f"{source} has no champion predictions although a champion was planned")
    return out


# ---------------------------------------------------------------------------------------------- metrics


def bootstrap_resamples(n: int) -> int:
    """Resamples for ``n`` test examples: 1000, fewer above 20,000 examples (at least 200)."""
    return max(MIN_RESAMPLES, min(MAX_RESAMPLES, RESAMPLE_BUDGET // max(n, 1)))


def model_scores(
    references: Sequence[str], predictions: Sequence[str], labels: Sequence[str], resamples: int
) -> dict[str, Any]:
    """Every classification metric of one model, the bootstrap intervals of the headline ones (``ci``), per-class
    scores and the confusion matrix over ``labels`` (shared by the models, so their tables line up).

    The averages are over the labels seen in the references or the predictions (scikit-learn's default).
    """
    rows = [{"reference": r, "prediction": p} for r, p in zip(references, predictions, strict=True)]
    computed = compute_metrics("classification", rows, ci=True, seed=BOOTSTRAP_SEED, resamples=resamples)
    report: dict[str, Any] = dict(classification_report(references, predictions))
    headline = HEADLINE_METRICS["classification"]
    report.update({name: computed[name] for name in headline})
    report.update(
        n=computed["n"],
        ci={name: list(computed[f"{name}_ci"]) for name in headline},
        labels=list(labels),
        per_class=per_class_scores(references, predictions, labels=labels),
        confusion_matrix=confusion_matrix(references, predictions, labels=labels),
    )
    return report


def summarize(scores: dict[str, Any]) -> MetricSummary:
    return MetricSummary(
        accuracy=scores["accuracy"],
        f1_macro=scores["f1_macro"],
        f1_weighted=scores["f1_weighted"],
        precision_macro=scores["precision_macro"],
        recall_macro=scores["recall_macro"],
    )


def metric_statistic(references: Sequence[str], predictions: Sequence[str], metric: MetricName) -> Statistic:
    """``metric`` recomputed on resampled examples (as ``compute_metrics`` does: the labels of the resample)."""
    if metric == "accuracy":
        return mean_of([float(p == r) for r, p in zip(references, predictions, strict=True)])
    return classification_statistics(list(references), list(predictions))[metric]


def format_p(p: float) -> str:
    """A p-value for a table cell: 4 decimals, or ``< 0.0001``."""
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def p_phrase(p: float) -> str:
    """A p-value in a sentence: ``p = 0.0215`` or ``p < 0.0001``."""
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.4f}"


def verdict(baseline: str, b: int, c: int, p: float, n: int) -> str:
    """McNemar's result in plain words (``b``: only the baseline right, ``c``: only the fine-tuned model right)."""
    who = "the base model" if baseline == "base" else "the champion"
    if b + c == 0:
        return (
            f"The fine-tuned model and {who} get exactly the same test examples right: there is no difference "
            "to test (p = 1)."
        )
    counts = (
        f"the fine-tuned model gets {c} test example{'s' if c != 1 else ''} right that {who} gets wrong, "
        f"and {who} gets {b} right that the fine-tuned model gets wrong"
    )
    if p < ALPHA and c != b:
        direction = "better" if c > b else "worse"
        return (
            f"The fine-tuned model is significantly {direction} than {who} (McNemar {p_phrase(p)}, below "
            f"{ALPHA}): {counts}; a difference this large is unlikely to be chance."
        )
    return (
        f"No significant difference between the fine-tuned model and {who} (McNemar {p_phrase(p)}, not below "
        f"{ALPHA}): {counts}; on {n} test examples this could be chance."
    )


def paired_test(
    references: Sequence[str],
    baseline: Sequence[str],
    finetuned: Sequence[str],
    *,
    baseline_name: str,
    metric: MetricName,
    resamples: int,
) -> PairedTest:
    """McNemar's test on per-example correctness and a paired bootstrap of ``metric``: fine-tuned vs baseline."""
    n = len(references)
    correct_baseline = [p == r for r, p in zip(references, baseline, strict=True)]
    correct_finetuned = [p == r for r, p in zip(references, finetuned, strict=True)]
    exact = mcnemar(correct_baseline, correct_finetuned)
    boot = paired_bootstrap_test(
        n,
        metric_statistic(references, baseline, metric),
        metric_statistic(references, finetuned, metric),
        resamples=resamples,
        seed=BOOTSTRAP_SEED,
        alpha=1 - CONFIDENCE,
    )
    return PairedTest.model_validate(
        {
            "baseline": baseline_name,
            "baseline_only_correct": exact.b,
            "finetuned_only_correct": exact.c,
            "mcnemar_p_value": exact.p_value,
            "mcnemar_method": exact.method,
            "metric": metric,
            "delta": boot.delta,
            "delta_ci": [boot.low, boot.high],
            "bootstrap_p_value": boot.p_value,
            "significant": exact.p_value < ALPHA and exact.b != exact.c,
            "verdict": verdict(baseline_name, exact.b, exact.c, exact.p_value, n),
        }
    )


def metrics_csv(document: dict[str, Any]) -> bytes:
    """One row per model x headline metric of the task: ``model,model_id,metric,value,ci_low,ci_high,n``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "model_id", "metric", "value", "ci_low", "ci_high", "n"])
    for model in MODELS:
        scores = document.get(model)
        if not scores:
            continue
        for name in evaluation_metrics(str(document.get("task") or "classification")):
            low, high = scores["ci"][name]
            writer.writerow([model, document["model_ids"][model], name, scores[name], low, high, scores["n"]])
    return buffer.getvalue().encode()


# ------------------------------------------------------------------------------------- the other tasks


class TaskPrediction(NamedTuple):
    """One test example of a multilabel or generative run: the input shown (``text`` or ``prompt``), the
    references (multilabel: the true labels; generative: the gold texts) and each model's output (a label list,
    or a generated text)."""

    line: int
    text: str
    reference: list[str]
    outputs: dict[str, Any]


def _strings(value: Any, where: str, field: str, *, non_empty: bool) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EvaluationError(f"{where}: field '{field}' must be a list of strings")
    if non_empty and not value:
        raise EvaluationError(f"{where}: field '{field}' must not be empty")
    return list(value)


def task_prediction(row: Any, task: str, where: str, line_no: int) -> TaskPrediction:
    """One predictions.jsonl line of a multilabel or generative run (``where``: the file and line, for errors).

    Multilabel: ``reference``, ``base``, ``finetuned`` (and ``champion``) are label lists. Generative:
    ``reference`` is the list of gold texts (a string is one), the outputs are strings.

    Raises:
        EvaluationError: naming the line and the field.
    """
    if not isinstance(row, dict):
        raise EvaluationError(f"{where}: expected a JSON object")
    missing = [f for f in ("reference", "base", "finetuned") if f not in row]
    if missing:
        raise EvaluationError(f"{where}: field '{missing[0]}' is missing")
    number = row.get("line")
    line = number if isinstance(number, int) and not isinstance(number, bool) else line_no
    present = [m for m in MODELS if m in row and row[m] is not None]
    outputs: dict[str, Any] = {}
    if task == "multilabel":
        reference = _strings(row["reference"], where, "reference", non_empty=False)
        for model in present:
            outputs[model] = _strings(row[model], where, model, non_empty=False)
        return TaskPrediction(line, str(row.get("text", "")), reference, outputs)
    gold = row["reference"]
    reference = [gold] if isinstance(gold, str) else _strings(gold, where, "reference", non_empty=True)
    for model in present:
        if not isinstance(row[model], str):
            raise EvaluationError(f"{where}: field '{model}' must be a string (the generated text)")
        outputs[model] = row[model]
    return TaskPrediction(line, str(row.get("prompt", row.get("text", ""))), reference, outputs)


def read_task_predictions(s3: S3Storage, uri: str, task: str) -> Iterator[TaskPrediction]:
    """Each line of evaluate.py's predictions.jsonl of a multilabel or generative run (streamed).

    Raises:
        EvaluationError: missing file or a malformed line (named by its number and field).
    """
    bucket, key = split_uri(uri)
    try:
        stream = s3.open(bucket, key)
    except ResourceNotFoundError as exc:
        raise EvaluationError(f"the evaluation job wrote no {PREDICTIONS_FILE} at {uri}") from exc
    try:
        for line_no, raw in HashingLineReader(stream.iter_chunks()):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as exc:
                raise EvaluationError(f"{uri} line {line_no}: invalid JSON: {exc}") from exc
            yield task_prediction(row, task, f"{uri} line {line_no}", line_no)
    except DatasetValidationError as exc:
        raise EvaluationError(f"{uri}: {exc}") from exc


def bedrock_max_new_tokens(run: RunRequest) -> int:
    """Tokens a Bedrock model may generate per answer: the run's ``max_new_tokens`` hyperparameter, else 256."""
    value = run.hyperparameters.get("max_new_tokens", "")
    return int(value) if value.isdigit() and int(value) > 0 else BEDROCK_MAX_NEW_TOKENS


def bedrock_request(base_model: str, example: GenerativeExample, max_tokens: int) -> dict[str, Any]:
    """The InvokeModel body that asks a Bedrock model (of ``base_model``'s family) the example's prompt: the same
    prompt as its Bedrock training line (the conversation so far; one text for Titan)."""
    asked = example.prompt_messages
    return invocation_body(
        base_model,
        transcript(asked, example.system),
        max_tokens=max_tokens,
        messages=asked,
        system=example.system,
    )


def bedrock_task_predictions(
    runtime: BedrockRuntime, s3: S3Storage, run: RunRequest, dataset: DatasetInfo, model_id: str
) -> Iterator[TaskPrediction]:
    """Generative runs on Bedrock: ask the base and the custom model each test record's prompt (up to 500)."""
    bucket, key = split_uri(dataset.test_uri)
    stream = s3.open(bucket, key)
    max_tokens = bedrock_max_new_tokens(run)
    for line_no, raw in HashingLineReader(stream.iter_chunks()):
        if line_no > MAX_BEDROCK_RECORDS:
            break
        if not raw.strip():
            continue
        try:
            example = generative_example(json.loads(raw))
        except (ValueError, RecordFormatError) as exc:
            raise EvaluationError(f"{dataset.test_uri} line {line_no}: {exc}") from exc
        body = bedrock_request(run.base_model, example, max_tokens)  # the custom model takes its base model's body
        base = generated_text(runtime.invoke_json(run.base_model, body)).strip()
        tuned = generated_text(runtime.invoke_json(model_id, body)).strip()
        prompt = example.prompt_messages[-1][1]
        yield TaskPrediction(line_no, prompt, list(example.references), {"base": base, "finetuned": tuned})


@dataclass
class TaskColumns:
    """A multilabel or generative run's predictions, column by column."""

    lines: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)
    outputs: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.references)


def collect_task(rows: Iterator[TaskPrediction], source: str, *, expect_champion: bool) -> TaskColumns:
    """Read every prediction once into columns.

    Raises:
        EvaluationError: no predictions, or champion predictions on some lines only (or missing when expected).
    """
    out = TaskColumns()
    for index, row in enumerate(rows):
        if index == 0:
            out.outputs = {model: [] for model in MODELS if model in row.outputs}
        if ("champion" in out.outputs) != ("champion" in row.outputs):
            raise EvaluationError(f"{source} line {row.line}: field 'champion' is missing on some lines only")
        out.lines.append(row.line)
        out.texts.append(row.text)
        out.references.append(row.reference)
        for model, column in out.outputs.items():
            column.append(row.outputs[model])
    if not out.references:
        raise EvaluationError(f"no predictions in {source}")
    if expect_champion and "champion" not in out.outputs:
        raise EvaluationError(f"{source} has no champion predictions although a champion was planned")
    return out


def _metric_rows(task: str, references: Sequence[list[str]], outputs: Sequence[Any]) -> list[dict[str, Any]]:
    if task == "summarization":  # one reference summary (evaluate.py writes one)
        return [{"reference": r[0], "prediction": p} for r, p in zip(references, outputs, strict=True)]
    return [{"reference": r, "prediction": p} for r, p in zip(references, outputs, strict=True)]


def _computed(task: str, references: Sequence[list[str]], outputs: Sequence[Any], resamples: int) -> dict[str, Any]:
    """``compute_metrics`` of one model (chat: ROUGE against the first reference, SQuAD against all of them)."""
    try:
        if task == "chat":
            rouge = compute_metrics(
                "summarization",
                _metric_rows("summarization", references, outputs),
                ci=True,
                seed=BOOTSTRAP_SEED,
                resamples=resamples,
            )
            squad = compute_metrics(
                "qa", _metric_rows("qa", references, outputs), ci=True, seed=BOOTSTRAP_SEED, resamples=resamples
            )
            return {**rouge, **squad}
        return compute_metrics(
            task,  # type: ignore[arg-type]
            _metric_rows(task, references, outputs),
            ci=True,
            seed=BOOTSTRAP_SEED,
            resamples=resamples,
        )
    except MetricInputError as exc:
        raise EvaluationError(f"predictions: {exc}") from exc


def per_label_scores(references: Sequence[list[str]], predictions: Sequence[list[str]], labels: Sequence[str]) -> dict:
    """Multilabel: precision, recall, F1 and support of each label (one-vs-rest over the examples)."""
    tp = dict.fromkeys(labels, 0)
    predicted = dict.fromkeys(labels, 0)
    true = dict.fromkeys(labels, 0)
    for reference, prediction in zip(references, predictions, strict=True):
        gold, guess = set(reference), set(prediction)
        for label in labels:
            true[label] += label in gold
            predicted[label] += label in guess
            tp[label] += label in gold and label in guess
    precision, recall, f1 = prf_from_counts(
        [tp[x] for x in labels], [predicted[x] for x in labels], [true[x] for x in labels], 0.0
    )
    return {
        label: {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": true[label]}
        for i, label in enumerate(labels)
    }


def task_model_scores(
    task: str, references: Sequence[list[str]], outputs: Sequence[Any], labels: Sequence[str], resamples: int
) -> dict[str, Any]:
    """Every metric of the task for one model, their bootstrap intervals (``ci``), ``n`` and, for multilabel,
    the per-label scores over ``labels`` (shared by the models, so their tables line up)."""
    computed = _computed(task, references, outputs, resamples)
    names = evaluation_metrics(task)
    scores: dict[str, Any] = {name: computed[name] for name in names}
    scores.update(n=computed["n"], ci={name: list(computed[f"{name}_ci"]) for name in names})
    if task == "multilabel":
        scores.update(labels=list(labels), per_label=per_label_scores(references, outputs, labels))
    return scores


def example_scores(task: str, metric: str, references: Sequence[list[str]], outputs: Sequence[Any]) -> list[float]:
    """Each example's score on ``metric`` (0-1; 0-100 for exact_match and f1, as ``compute_metrics`` gives them):
    ROUGE F-measure, SQuAD exact match or token F1 against the best gold answer, a multilabel example's F1
    (or exact set match for subset_accuracy)."""
    if task == "multilabel":
        sets = [(frozenset(r), frozenset(p)) for r, p in zip(references, outputs, strict=True)]
        if metric == "subset_accuracy":
            return [float(t == p) for t, p in sets]
        return [sample_scores(t, p, 0.0)[2] for t, p in sets]
    if metric in ROUGE_TYPES:
        scored = rouge_scores(list(outputs), [r[0] for r in references], use_stemmer=True, rouge_types=(metric,))
        return [s[metric].fmeasure for s in scored]
    score = exact_match if metric == "exact_match" else token_f1
    return [100.0 * score(p, r) for r, p in zip(references, outputs, strict=True)]


def multilabel_statistic(references: Sequence[list[str]], outputs: Sequence[list[str]], metric: str) -> Statistic:
    """``metric`` recomputed on resampled examples as ``compute_metrics`` does (micro/macro F1 over the labels
    of the resample; the per-example metrics as means)."""
    if metric not in ("f1_micro", "f1_macro"):
        return mean_of(example_scores("multilabel", metric, references, outputs))
    pairs = [(frozenset(r), frozenset(p)) for r, p in zip(references, outputs, strict=True)]
    names = sorted({label for t, p in pairs for label in t | p})
    index = {label: i for i, label in enumerate(names)}
    k = len(names)
    pattern_of: dict[tuple[frozenset[str], frozenset[str]], int] = {}
    row_pattern = [pattern_of.setdefault(pair, len(pattern_of)) for pair in pairs]
    patterns = [([index[x] for x in t], [index[x] for x in p], [index[x] for x in t & p]) for t, p in pattern_of]
    micro = metric == "f1_micro"

    def statistic(indices: list[int]) -> float:
        tp, predicted, true = [0] * k, [0] * k, [0] * k
        for pattern, count in Counter(map(row_pattern.__getitem__, indices)).items():
            true_ids, pred_ids, hit_ids = patterns[pattern]
            for i in true_ids:
                true[i] += count
            for i in pred_ids:
                predicted[i] += count
            for i in hit_ids:
                tp[i] += count
        present = [i for i in range(k) if true[i] or predicted[i]]
        averages = averages_from_counts(
            [tp[i] for i in present], [predicted[i] for i in present], [true[i] for i in present], 0.0
        )
        return averages["micro"][2] if micro else averages["macro"][2]

    return statistic


def task_statistic(task: str, metric: str, references: Sequence[list[str]], outputs: Sequence[Any]) -> Statistic:
    """The gate ``metric`` of one model as a bootstrap statistic (a mean of per-example scores, or multilabel's
    corpus F1 recomputed on each resample)."""
    if task == "multilabel":
        return multilabel_statistic(references, outputs, metric)
    return mean_of(example_scores(task, metric, references, outputs))


def bootstrap_verdict(baseline: str, metric: str, delta: float, low: float, high: float, p: float) -> str:
    """The paired bootstrap's result in plain words (tasks without McNemar's test)."""
    who = "the base model" if baseline == "base" else "the champion"
    evidence = f"{metric} difference {delta:+.4f}, 95% interval [{low:+.4f}, {high:+.4f}], bootstrap {p_phrase(p)}"
    if low > 0 or high < 0:
        direction = "better" if low > 0 else "worse"
        return (
            f"The fine-tuned model is significantly {direction} than {who} on {metric} ({evidence}): the 95% "
            "interval of the difference excludes 0."
        )
    return (
        f"No significant difference between the fine-tuned model and {who} on {metric} ({evidence}): the 95% "
        "interval of the difference includes 0."
    )


def task_paired_test(
    task: str,
    references: Sequence[list[str]],
    baseline: Sequence[Any],
    finetuned: Sequence[Any],
    *,
    baseline_name: str,
    metric: MetricName,
    resamples: int,
) -> PairedTest:
    """Koehn's paired bootstrap of ``metric``: fine-tuned vs baseline (no McNemar outside classification)."""
    boot = paired_bootstrap_test(
        len(references),
        task_statistic(task, metric, references, baseline),
        task_statistic(task, metric, references, finetuned),
        resamples=resamples,
        seed=BOOTSTRAP_SEED,
        alpha=1 - CONFIDENCE,
    )
    return PairedTest.model_validate(
        {
            "baseline": baseline_name,
            "metric": metric,
            "delta": boot.delta,
            "delta_ci": [boot.low, boot.high],
            "bootstrap_p_value": boot.p_value,
            "significant": boot.low > 0 or boot.high < 0,
            "verdict": bootstrap_verdict(baseline_name, metric, boot.delta, boot.low, boot.high, boot.p_value),
        }
    )


def task_example(task: str, columns: TaskColumns, i: int, score: float) -> dict[str, Any]:
    """One line of the normalised predictions.jsonl (and of the worst examples): the input, the references, each
    model's output and the fine-tuned model's score on the gate metric."""
    key = "text" if task == "multilabel" else "prompt"
    row: dict[str, Any] = {"line": columns.lines[i], key: columns.texts[i], "reference": columns.references[i]}
    for model, values in columns.outputs.items():
        row[model] = values[i]
    row["finetuned_score"] = score
    return row


def worst_task_examples(
    task: str, columns: TaskColumns, scores: Sequence[float], perfect: float
) -> list[dict[str, Any]]:
    """The fine-tuned model's lowest-scoring examples (below a perfect score), lowest first, then in line order."""
    worst = heapq.nsmallest(
        WORST_EXAMPLES, (i for i in range(columns.count) if scores[i] < perfect), key=lambda i: (scores[i], i)
    )
    out = []
    for i in worst:
        example = task_example(task, columns, i, scores[i])
        key = "text" if task == "multilabel" else "prompt"
        example[key] = str(example[key])[:EXAMPLE_TEXT_CHARS]
        out.append(example)
    return out


# ------------------------------------------------------------------------------------------------ evaluate


@dataclass
class Scored:
    """What one task's evaluation gives the common writer: per-model scores, paired tests, labels, the worst
    examples and the normalised predictions.jsonl."""

    count: int
    labels: list[str]
    scores: dict[str, dict[str, Any]]
    tests: dict[str, PairedTest]
    worst: list[dict[str, Any]]
    file: IO[bytes]
    resamples: int


def _score_classification(
    rows: Iterator[Prediction], source: str, run: RunRequest, dataset: DatasetInfo, expect_champion: bool
) -> Scored:
    found = collect(rows, source, expect_champion=expect_champion)
    n = found.count
    predictions = found.predictions()
    labels = sorted(set(dataset.labels) | set(found.references) | {p for v in predictions.values() for p in v})
    resamples = bootstrap_resamples(n)
    scores = {name: model_scores(found.references, preds, labels, resamples) for name, preds in predictions.items()}
    tests = {
        f"finetuned_vs_{name}": paired_test(
            found.references,
            predictions[name],
            found.finetuned,
            baseline_name=name,
            metric=run.metric,
            resamples=resamples,
        )
        for name in ("base", "champion")
        if name in predictions
    }
    return Scored(n, labels, scores, tests, found.worst_examples(), found.file, resamples)


def _score_task(
    rows: Iterator[TaskPrediction], source: str, run: RunRequest, dataset: DatasetInfo, expect_champion: bool
) -> Scored:
    task = run.task
    columns = collect_task(rows, source, expect_champion=expect_champion)
    n = columns.count
    labels: list[str] = []
    if task == "multilabel":
        seen = {x for r in columns.references for x in r} | {x for v in columns.outputs.values() for p in v for x in p}
        labels = sorted(set(dataset.labels) | seen)
    resamples = bootstrap_resamples(n)
    scores = {
        model: task_model_scores(task, columns.references, outputs, labels, resamples)
        for model, outputs in columns.outputs.items()
    }
    tests = {
        f"finetuned_vs_{name}": task_paired_test(
            task,
            columns.references,
            columns.outputs[name],
            columns.outputs["finetuned"],
            baseline_name=name,
            metric=run.metric,
            resamples=resamples,
        )
        for name in ("base", "champion")
        if name in columns.outputs
    }
    per_example = example_scores(task, run.metric, columns.references, columns.outputs["finetuned"])
    perfect = 100.0 if run.metric in QA_METRICS else 1.0
    file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    for i in range(n):
        file.write(json.dumps(task_example(task, columns, i, per_example[i]), ensure_ascii=False).encode() + b"\n")
    return Scored(n, labels, scores, tests, worst_task_examples(task, columns, per_example, perfect), file, resamples)


def summarize_task(task: str, scores: dict[str, Any]) -> MetricSummary:
    """The headline metrics of one model as the workflow carries them (``MetricSummary``)."""
    if task == "classification":
        return summarize(scores)
    return MetricSummary.model_validate({name: scores[name] for name in evaluation_metrics(task)})


def evaluate(
    event: EvaluateEvent,
    *,
    s3: S3Storage,
    settings: CommonSettings,
    runtime: BedrockRuntime | None = None,
    clock: Clock = utcnow,
) -> EvaluationResult:
    """Metrics of the base, the fine-tuned and (when planned) the champion model on the test split, with bootstrap
    intervals and paired tests; writes evaluation.json, metrics.csv, predictions.jsonl and report.html under
    ``runs/<run_id>/`` in the reports bucket. Which metrics: the run's task (module docstring).

    SageMaker: reads the processing job's predictions.jsonl. Bedrock (no evaluation_spec): invokes both models
    (no champion): a classification prompt, or a generative task's prompt (the answer is scored as generated).

    Raises:
        EvaluationError: no or malformed predictions.
        TransientAwsError, AwsRequestError.
    """
    run, dataset, training, spec = event.run, event.dataset, event.training, event.evaluation_spec
    task = run.task
    prefix = f"runs/{run.run_id}/"
    bucket = settings.reports_bucket
    if spec is not None:
        source_uri = spec.output_uri.rstrip("/") + "/" + PREDICTIONS_FILE
        champion_arn, champion_note = spec.champion_arn, spec.champion_note
        if task == "classification":
            found = _score_classification(
                read_predictions(s3, source_uri), source_uri, run, dataset, champion_arn is not None
            )
        else:
            found = _score_task(
                read_task_predictions(s3, source_uri, task), source_uri, run, dataset, champion_arn is not None
            )
    else:
        if not training.custom_model_arn:
            raise EvaluationError(f"training job {training.job_name} reported no custom model ARN")
        source_uri = s3_uri(bucket, prefix + PREDICTIONS_FILE)
        # On AWS a custom model is invoked through its provisioned throughput, not by its own ARN.
        model_id = (event.deployment.provisioned_model_arn if event.deployment else None) or training.custom_model_arn
        champion_arn, champion_note = None, "the Bedrock branch evaluates no champion"
        bedrock = runtime or BedrockRuntime()
        if task == "classification":
            found = _score_classification(
                bedrock_predictions(bedrock, s3, run, dataset, model_id), source_uri, run, dataset, False
            )
        elif task in GENERATIVE_TASKS:
            found = _score_task(
                bedrock_task_predictions(bedrock, s3, run, dataset, model_id), source_uri, run, dataset, False
            )
        else:
            raise EvaluationError(f"task {task} cannot be evaluated on Bedrock")

    n, scores, tests = found.count, found.scores, found.tests
    predictions_uri = s3.put_file(bucket, prefix + PREDICTIONS_FILE, found.file, "application/jsonlines")
    found.file.close()
    evaluation_uri = s3_uri(bucket, prefix + EVALUATION_FILE)
    csv_uri = s3_uri(bucket, prefix + METRICS_CSV_FILE)
    report_uri = s3_uri(bucket, prefix + REPORT_FILE)
    document: dict[str, Any] = {
        "schema_version": 2,
        "run_id": run.run_id,
        "use_case": run.use_case,
        "created_at": iso(clock()),
        "task": task,
        "metric": run.metric,
        "threshold": run.threshold,
        "test_count": n,
        "labels": found.labels,
        "predictions_uri": predictions_uri,
        "job_predictions_uri": source_uri if spec is not None else None,
        "evaluation_uri": evaluation_uri,
        "metrics_csv_uri": csv_uri,
        "report_uri": report_uri,
        "dataset": {"uri": dataset.source_uri, "version_id": dataset.version_id, "sha256": dataset.sha256},
        "base_model": run.base_model,
        "training_job": training.job_arn,
        "champion_arn": champion_arn if "champion" in scores else None,
        "champion_note": champion_note,
        "model_ids": {
            "base": run.base_model,
            "finetuned": training.custom_model_arn or training.job_arn,
            "champion": champion_arn,
        },
        "bootstrap": {
            "method": "percentile",
            "confidence": CONFIDENCE,
            "resamples": found.resamples,
            "seed": BOOTSTRAP_SEED,
        },
        "base": scores["base"],
        "finetuned": scores["finetuned"],
        "champion": scores.get("champion"),
        "paired_tests": {name: test.model_dump(mode="json") for name, test in tests.items()},
        "worst_examples": found.worst,
    }
    s3.put_bytes(bucket, prefix + METRICS_CSV_FILE, metrics_csv(document), "text/csv; charset=utf-8")
    s3.put_json(bucket, prefix + EVALUATION_FILE, document)
    s3.put_bytes(bucket, prefix + REPORT_FILE, render_report(document).encode(), "text/html; charset=utf-8")

    summaries = {name: summarize_task(task, value) for name, value in scores.items()}
    if task == "classification":
        metrics.add_metric(name="FinetunedAccuracy", unit="None", value=summaries["finetuned"].accuracy or 0.0)
    else:
        metrics.add_metric(name="FinetunedMetric", unit="None", value=scores["finetuned"][run.metric])
    logger.info(
        "evaluation done",
        extra={
            "run_id": run.run_id,
            "task": task,
            **{name: summary.model_dump() for name, summary in summaries.items()},
            "p_values": {
                name: test.mcnemar_p_value if test.mcnemar_p_value is not None else test.bootstrap_p_value
                for name, test in tests.items()
            },
        },
    )
    return EvaluationResult(
        metric=run.metric,
        base_metrics=summaries["base"],
        finetuned_metrics=summaries["finetuned"],
        test_count=n,
        evaluation_uri=evaluation_uri,
        report_uri=report_uri,
        champion_arn=document["champion_arn"],
        champion_metrics=summaries.get("champion"),
        paired_tests=tests,
    )
