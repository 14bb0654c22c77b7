"""The model registry library (fmops.registry): list, show, lineage, compare with a paired test, decide."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from fmops_testkit import FIXED_NOW, FakeAws, RecordingStepFunctions, fixed_clock
from models_testkit import (
    CODE_SHA256,
    OTHER_TEST_SPLIT,
    TEST_SPLIT,
    TaskRun,
    generated_rows,
    publish_code,
    register_version,
    request_pending_approval,
)

from fmops.errors import RequestValidationError, ResourceNotFoundError
from fmops.lifecycle.approval import decide_approval
from fmops.metrics.rouge import rouge_scores
from fmops.metrics.stats import paired_bootstrap_test
from fmops.registry import (
    METADATA_VALUE_MAX,
    Registry,
    WorkflowApprovalPendingError,
    history_entry,
    merge_history,
    parse_versions,
    trim_history,
)

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def registry(aws: FakeAws, **kwargs: object) -> Registry:
    return Registry(aws.sagemaker, aws.s3, reports_bucket=aws.env["REPORTS_BUCKET"], clock=fixed_clock, **kwargs)  # type: ignore[arg-type]


def metadata_of(arn: str) -> dict[str, str]:
    return dict(boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"])


# ------------------------------------------------------------------------------------------- registration


def test_registration_records_the_code_and_test_split_checksums(aws: FakeAws) -> None:
    # Given the training code in the artifacts bucket and a manifest with the splits' sha256
    publish_code(aws)
    # When a version is registered
    ref = register_version(aws, "churn-000000000001")
    # Then the metadata and the lineage JSON carry the code's sha256 and the test split's
    metadata = metadata_of(ref.model_package_arn)
    assert metadata["code_sha256"] == CODE_SHA256 and metadata["test_sha256"] == TEST_SPLIT
    lineage = json.loads(aws.read(metadata["lineage_uri"]))
    assert lineage["code"]["sha256"] == CODE_SHA256 and lineage["code"]["sha256_source"] == "content"
    assert lineage["code"]["uri"] == "s3://fmops-artifacts/code/training/sourcedir.tar.gz"
    assert lineage["code"]["version_id"]
    assert lineage["dataset"]["test_sha256"] == TEST_SPLIT
    assert set(lineage["dataset"]["split_sha256"]) == {"train", "validation", "test"}


def test_a_sha256_in_the_code_object_metadata_is_used_without_reading_it(aws: FakeAws) -> None:
    publish_code(aws, {"fmops-sha256": "e" * 64})
    ref = register_version(aws, "churn-000000000001")
    assert metadata_of(ref.model_package_arn)["code_sha256"] == "e" * 64


def test_without_code_or_manifest_registration_still_works(aws: FakeAws) -> None:
    ref = register_version(aws, "churn-000000000001", test_sha256=None)
    metadata = metadata_of(ref.model_package_arn)
    assert "code_sha256" not in metadata and "test_sha256" not in metadata
    lineage = json.loads(aws.read(metadata["lineage_uri"]))
    assert lineage["code"] is None and lineage["dataset"]["test_sha256"] is None


# ------------------------------------------------------------------------------------------- reading


def test_list_versions_newest_first_with_headline_metrics(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001", correct=[True] * 7 + [False] * 3)
    register_version(aws, "churn-000000000002", correct=[True] * 9 + [False])
    rows = registry(aws).list_versions("churn")
    assert [r["version"] for r in rows] == [2, 1]
    newest = rows[0]
    assert newest["status"] == "PendingManualApproval" and newest["run_id"] == "churn-000000000002"
    assert newest["backend"] == "sagemaker"
    assert newest["metrics"]["accuracy"] == pytest.approx(0.9)
    assert newest["metrics"]["base_accuracy"] == pytest.approx(0.52)
    assert newest["report_uri"] == "s3://fmops-reports/runs/churn-000000000002/report.html"
    assert newest["arn"].endswith("/churn/2") and newest["created"].endswith("Z")


def test_unknown_group_is_not_found_and_a_bad_name_is_invalid(aws: FakeAws) -> None:
    with pytest.raises(ResourceNotFoundError, match="no model package group nothing"):
        registry(aws).list_versions("nothing")
    with pytest.raises(RequestValidationError) as err:
        registry(aws).list_versions("not a group!")
    assert err.value.field == "group"


def test_show_returns_status_metadata_inference_and_history(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001")
    shown = registry(aws).show("churn", 1)
    assert shown["version"] == 1 and shown["status"] == "PendingManualApproval"
    assert shown["metadata"]["run_id"] == "churn-000000000001"
    assert shown["metrics"]["accuracy"] == pytest.approx(0.8)
    (container,) = shown["inference"]["containers"]
    assert container["program"] == "inference.py" and container["model_data_url"].endswith("model.tar.gz")
    assert shown["inference"]["realtime_instance_types"] == ["ml.m5.xlarge"]
    assert shown["model_quality_statistics_uri"].endswith("/model-quality.json")
    assert shown["approval_history"] == []


def test_unknown_version_is_not_found(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001")
    with pytest.raises(ResourceNotFoundError, match="model package group churn has no version 7"):
        registry(aws).show("churn", 7)
    with pytest.raises(RequestValidationError):
        registry(aws).show("churn", 0)


def test_lineage_of_a_sagemaker_version(aws: FakeAws) -> None:
    publish_code(aws)
    register_version(aws, "churn-000000000001", hyperparameters={"epochs": "3", "learning_rate": "5e-5"})
    lineage = registry(aws).lineage("churn", 1)
    dataset = lineage["dataset"]
    assert dataset["uri"] == "s3://fmops-datasets/datasets/churn/data.jsonl"
    assert dataset["version_id"] == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    assert len(dataset["sha256"]) == 64 and dataset["test_sha256"] == TEST_SPLIT
    assert dataset["manifest_uri"].endswith("/manifest.json")
    assert lineage["hyperparameters"] == {"epochs": "3", "learning_rate": "5e-5"}
    assert lineage["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    training = lineage["training"]
    assert training["training_job_arn"].endswith(":training-job/churn-000000000001-train")
    assert training["customization_job_arn"] is None and training["custom_model_arn"] is None
    assert lineage["code"]["sha256"] == CODE_SHA256
    assert lineage["metrics"]["finetuned"]["accuracy"] == pytest.approx(0.8) and lineage["metrics"]["test_count"] == 10
    assert lineage["report_uri"].endswith("/runs/churn-000000000001/report.html")
    assert lineage["lineage_found"] and lineage["approval_history"] == []


def test_lineage_of_a_bedrock_version(aws: FakeAws) -> None:
    publish_code(aws)
    register_version(aws, "churn-000000000001", backend="bedrock")
    lineage = registry(aws).lineage("churn", 1)
    assert lineage["backend"] == "bedrock" and lineage["code"]["sha256"] is None  # Bedrock does not run it
    training = lineage["training"]
    assert training["customization_job_arn"].endswith(":model-customization-job/churn-000000000001")
    assert training["custom_model_arn"].endswith(":custom-model/churn-000000000001")
    assert training["training_job_arn"] is None


def test_lineage_without_the_lineage_json_falls_back_to_the_metadata(aws: FakeAws) -> None:
    ref = register_version(aws, "churn-000000000001")
    aws.s3_client.delete_object(Bucket="fmops-reports", Key="runs/churn-000000000001/lineage.json")
    lineage = registry(aws).lineage("churn", 1)
    assert not lineage["lineage_found"]
    assert lineage["dataset"]["test_sha256"] == TEST_SPLIT and lineage["hyperparameters"]["epochs"] == "1"
    assert lineage["training"]["job_arn"] == metadata_of(ref.model_package_arn)["training_job_arn"]


# ------------------------------------------------------------------------------------------- compare


def test_compare_puts_metrics_side_by_side_with_mcnemar_on_the_same_split(aws: FakeAws) -> None:
    # Given v1 and v2 evaluated on the same test split: v1 alone right on 10 examples, v2 alone right on 2
    first = [True] * 10 + [False] * 2 + [True] * 20 + [False] * 4
    second = [False] * 10 + [True] * 2 + [True] * 20 + [False] * 4
    register_version(aws, "churn-000000000001", correct=first)
    register_version(aws, "churn-000000000002", correct=second)
    # and v3 on another split
    register_version(aws, "churn-000000000003", correct=[True] * 10, test_sha256=OTHER_TEST_SPLIT)
    result = registry(aws).compare("churn", [1, 2, 3])
    assert [r["version"] for r in result["versions"]] == [1, 2, 3]
    assert result["metrics"]["accuracy"] == {
        "1": pytest.approx(30 / 36),
        "2": pytest.approx(22 / 36),
        "3": pytest.approx(1.0),
    }
    pairs = {(p["a"], p["b"]): p for p in result["paired_tests"]}
    test = pairs[(1, 2)]["test"]
    assert pairs[(1, 2)]["same_test_split"] and test["name"] == "mcnemar"
    assert (test["only_a_correct"], test["only_b_correct"], test["both_correct"], test["both_wrong"]) == (10, 2, 20, 4)
    assert test["examples"] == 36
    assert test["method"] == "exact"
    assert test["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 4096)  # exact binomial, n = 12, k = 2
    assert test["significant"] and test["better"] == 1
    for pair in ((1, 3), (2, 3)):
        assert pairs[pair]["test"] is None and not pairs[pair]["same_test_split"]
        assert "different test splits" in pairs[pair]["reason"]


def test_compare_without_recorded_split_or_predictions_says_why(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001")
    register_version(aws, "churn-000000000002", test_sha256=None)
    register_version(aws, "churn-000000000003")
    aws.s3_client.delete_object(Bucket="fmops-artifacts", Key="evaluation/churn-000000000003/predictions.jsonl")
    pairs = {(p["a"], p["b"]): p for p in registry(aws).compare("churn", [1, 2, 3])["paired_tests"]}
    assert "not recorded" in pairs[(1, 2)]["reason"]
    assert pairs[(1, 3)]["same_test_split"] and pairs[(1, 3)]["test"] is None
    assert "version 3: per-example predictions not readable" in pairs[(1, 3)]["reason"]


def test_compare_pairs_bedrock_and_sagemaker_predictions_by_line(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001", correct=[True] * 10)
    register_version(aws, "churn-000000000002", correct=[True] * 5 + [False] * 5, backend="bedrock")
    (pair,) = registry(aws).compare("churn", [2, 1])["paired_tests"]
    assert (pair["a"], pair["b"]) == (2, 1)
    assert pair["test"]["only_a_correct"] == 0 and pair["test"]["only_b_correct"] == 5
    assert pair["test"]["p_value"] == pytest.approx(2 / 32)
    assert not pair["test"]["significant"] and pair["test"]["better"] is None


def test_compare_with_many_discordant_pairs_uses_the_chi_square(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001", correct=[True] * 30 + [False] * 10)
    register_version(aws, "churn-000000000002", correct=[False] * 30 + [True] * 10)
    (pair,) = registry(aws).compare("churn", [1, 2])["paired_tests"]
    test = pair["test"]
    assert test["method"] == "chi2" and (test["only_a_correct"], test["only_b_correct"]) == (30, 10)
    assert test["statistic"] == pytest.approx(19**2 / 40)
    assert test["significant"] and test["better"] == 1


def test_compare_needs_two_to_ten_known_versions(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001")
    with pytest.raises(RequestValidationError, match="at least 2"):
        registry(aws).compare("churn", [1, 1])
    with pytest.raises(ResourceNotFoundError, match="has no version 2"):
        registry(aws).compare("churn", [1, 2])
    assert parse_versions("3, 1,3") == [3, 1]
    for bad in (None, "", "1", "1,x", ",".join(str(i) for i in range(1, 12))):
        with pytest.raises(RequestValidationError) as err:
            parse_versions(bad)
        assert err.value.field == "versions"


# ------------------------------------------------------------------------------------------- decide


def test_approve_then_reject_records_status_and_history(aws: FakeAws) -> None:
    ref = register_version(aws, "churn-000000000001")
    result = registry(aws).decide("churn", 1, "approve", "beats the champion", ALICE)
    assert result["status"] == "Approved" and result["previous_status"] == "PendingManualApproval"
    assert result["approval_history"] == [
        {"who": ALICE, "when": "2025-01-01T12:00:00Z", "decision": "approved", "reason": "beats the champion"}
    ]
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=ref.model_package_arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == f"approved by {ALICE}: beats the champion"
    assert result["approval_history_uri"] == "s3://fmops-reports/runs/churn-000000000001/approval-history.json"

    later = Registry(aws.sagemaker, aws.s3, clock=lambda: FIXED_NOW + timedelta(hours=1)).decide(
        "churn", 1, "reject", "  drifts on new data  ", BOB
    )
    assert later["status"] == "Rejected" and later["reason"] == "drifts on new data"
    assert [e["decision"] for e in later["approval_history"]] == ["approved", "rejected"]
    stored = json.loads(aws.read(later["approval_history_uri"]))
    assert stored["approval_history"] == later["approval_history"]
    in_metadata = metadata_of(ref.model_package_arn)["approval_history"]
    assert len(in_metadata) <= METADATA_VALUE_MAX
    assert json.loads(in_metadata) == later["approval_history"][-len(json.loads(in_metadata)) :]
    shown = registry(aws).show("churn", 1)
    assert shown["status"] == "Rejected" and shown["approval_history"] == later["approval_history"]
    assert registry(aws).lineage("churn", 1)["approval_history"] == later["approval_history"]


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_empty_reason_is_refused(aws: FakeAws, reason: str) -> None:
    register_version(aws, "churn-000000000001")
    with pytest.raises(RequestValidationError) as err:
        registry(aws).decide("churn", 1, "approve", reason, ALICE)
    assert err.value.field == "reason"
    assert registry(aws).show("churn", 1)["status"] == "PendingManualApproval"


def test_deciding_an_unknown_version_is_not_found(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001")
    with pytest.raises(ResourceNotFoundError):
        registry(aws).decide("churn", 2, "approve", "ok", ALICE)
    with pytest.raises(RequestValidationError):
        registry(aws).decide("churn", 1, "maybe", "ok", ALICE)  # type: ignore[arg-type]


def test_the_metadata_keeps_the_newest_entries_that_fit_and_s3_keeps_all(aws: FakeAws) -> None:
    ref = register_version(aws, "churn-000000000001")
    for hour in range(6):
        clock = lambda hour=hour: FIXED_NOW + timedelta(hours=hour)  # noqa: E731
        decision = "approve" if hour % 2 == 0 else "reject"
        Registry(aws.sagemaker, aws.s3, clock=clock).decide("churn", 1, decision, f"decision number {hour}", ALICE)  # type: ignore[arg-type]
    value = metadata_of(ref.model_package_arn)["approval_history"]
    assert len(value) <= METADATA_VALUE_MAX
    kept = json.loads(value)
    assert 1 <= len(kept) < 6 and kept[-1]["reason"] == "decision number 5"
    history = registry(aws).show("churn", 1)["approval_history"]
    assert [e["reason"] for e in history] == [f"decision number {i}" for i in range(6)]


def test_a_single_long_entry_is_shortened_to_fit() -> None:
    entry = history_entry(ALICE, "2025-01-01T12:00:00Z", "approved", 'a "quoted" reason ' * 40)
    value = trim_history([entry])
    assert len(value) <= METADATA_VALUE_MAX
    (kept,) = json.loads(value)
    assert kept["who"] == ALICE and kept["reason"].endswith("...")
    huge_caller = history_entry("x" * 400, "2025-01-01T12:00:00Z", "rejected", "r" * 400)
    assert len(trim_history([huge_caller])) <= METADATA_VALUE_MAX


def test_merge_keeps_the_full_copy_and_adds_entries_only_in_the_metadata() -> None:
    full = history_entry(ALICE, "2025-01-01T12:00:00Z", "approved", "the whole reason")
    short = history_entry(ALICE, "2025-01-01T12:00:00Z", "approved", "the whole...")
    newer = history_entry(BOB, "2025-01-02T12:00:00Z", "rejected", "no")
    assert merge_history([full], [short, newer]) == [full, newer]


def test_a_version_waiting_for_its_workflow_approval_is_decided_there(aws: FakeAws) -> None:
    ref = register_version(aws, "churn-3f2a9c1d0b7e")
    request_pending_approval(aws, ref)
    with pytest.raises(WorkflowApprovalPendingError, match="fmops approve churn-3f2a9c1d0b7e"):
        registry(aws, approvals=aws.approvals).decide("churn", 1, "approve", "ok", ALICE)

    # The workflow's decision lands in the same history
    decide_approval(
        "churn-3f2a9c1d0b7e",
        "approved",
        approver=BOB,
        reason="ship it",
        approvals=aws.approvals,
        runs=aws.runs,
        sagemaker=aws.sagemaker,
        sfn=RecordingStepFunctions(),
        clock=fixed_clock,
        s3=aws.s3,
        reports_bucket=aws.env["REPORTS_BUCKET"],
    )
    shown = registry(aws).show("churn", 1)
    assert shown["status"] == "Approved"
    assert shown["approval_history"] == [
        {"who": BOB, "when": "2025-01-01T12:00:00Z", "decision": "approved", "reason": "ship it"}
    ]
    stored = json.loads(aws.read("s3://fmops-reports/runs/churn-3f2a9c1d0b7e/approval-history.json"))
    assert stored["approval_history"] == shown["approval_history"]
    # Once the workflow decided, the registry may change the decision
    registry(aws, approvals=aws.approvals).decide("churn", 1, "reject", "rolled back", ALICE)
    assert [e["decision"] for e in registry(aws).show("churn", 1)["approval_history"]] == ["approved", "rejected"]


# ------------------------------------------------------------------------------------- the other tasks

GOLD = [f"the parcel {i} arrived late and damaged" for i in range(20)]
ROUGE = {"rougeL": 0.5, "rouge1": 0.55, "rouge2": 0.3, "rougeLsum": 0.5}


def summarization(outputs: list[str], metric: str = "rougeL", **metrics: float) -> TaskRun:
    return TaskRun(
        "summarization",
        metric,
        generated_rows(GOLD, outputs),
        finetuned_metrics={**ROUGE, **metrics},
        base_metrics=dict.fromkeys(ROUGE, 0.1),
    )


def test_generative_versions_list_show_and_trace_their_own_metrics(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001", task_run=summarization(GOLD, rougeL=0.61))
    (row,) = registry(aws).list_versions("churn")
    assert row["task"] == "summarization"
    assert list(row["metrics"]) == [
        "rougeL", "rouge1", "rouge2", "rougeLsum", "base_rougeL", "base_rouge1", "base_rouge2", "base_rougeLsum"
    ]  # fmt: skip
    assert row["metrics"]["rougeL"] == pytest.approx(0.61) and row["metrics"]["base_rougeL"] == pytest.approx(0.1)
    assert "accuracy" not in row["metrics"]
    shown = registry(aws).show("churn", 1)
    assert shown["task"] == "summarization" and shown["metrics"] == row["metrics"]
    lineage = registry(aws).lineage("churn", 1)
    assert lineage["task"] == "summarization" and lineage["metrics"]["metric"] == "rougeL"
    assert lineage["metrics"]["finetuned"]["rouge1"] == pytest.approx(0.55)


def test_without_the_lineage_json_a_generative_lineage_falls_back_to_its_task_metrics(aws: FakeAws) -> None:
    ref = register_version(aws, "churn-000000000001", task_run=summarization(GOLD))
    bucket, key = metadata_of(ref.model_package_arn)["lineage_uri"].removeprefix("s3://").split("/", 1)
    aws.s3_client.delete_object(Bucket=bucket, Key=key)
    metrics = registry(aws).lineage("churn", 1)["metrics"]
    assert metrics["finetuned"] == pytest.approx(ROUGE)
    assert metrics["base"] == pytest.approx(dict.fromkeys(ROUGE, 0.1))


def test_a_version_registered_before_tasks_reads_as_classification(aws: FakeAws) -> None:
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    metadata = {"run_id": "churn-000000000001", "accuracy": "0.900000", "base_accuracy": "0.500000"}
    client.create_model_package(ModelPackageGroupName="churn", CustomerMetadataProperties=metadata)
    (row,) = registry(aws).list_versions("churn")
    assert row["task"] == "classification"
    assert row["metrics"] == {"accuracy": 0.9, "f1_macro": None, "base_accuracy": 0.5, "base_f1_macro": None}


def test_generative_versions_are_compared_with_the_paired_bootstrap_of_the_gate_metric(aws: FakeAws) -> None:
    # v1 reproduces 16 of the 20 summaries, v2 only 4: v1 is better on rougeL, and McNemar is not used.
    first = GOLD[:16] + ["nothing to see"] * 4
    second = GOLD[:4] + ["nothing to see"] * 16
    register_version(aws, "churn-000000000001", task_run=summarization(first))
    register_version(aws, "churn-000000000002", task_run=summarization(second))
    result = registry(aws).compare("churn", [1, 2])
    assert (result["task"], result["test"], result["metric"]) == ("summarization", "paired_bootstrap", "rougeL")
    assert list(result["metrics"]) == ["rougeL", "rouge1", "rouge2", "rougeLsum"]
    (pair,) = result["paired_tests"]
    test = pair["test"]
    assert test["name"] == "paired_bootstrap" and test["metric"] == "rougeL" and test["examples"] == 20
    assert not {"only_a_correct", "only_b_correct", "method"} & set(test)
    # The statistic is the evaluation's: the mean per-example ROUGE-L F-measure (stemmed) against the gold summary.
    scores = [s["rougeL"].fmeasure for s in rouge_scores(first, GOLD, use_stemmer=True, rouge_types=("rougeL",))]
    assert test["a_value"] == pytest.approx(sum(scores) / 20)
    assert test["b_value"] == pytest.approx(0.2) and test["delta"] == pytest.approx(test["b_value"] - test["a_value"])
    low, high = test["delta_ci"]
    assert low <= test["delta"] <= high < 0
    assert test["significant"] and test["better"] == 1 and test["p_value"] == 1.0  # v2 never better
    # The same numbers as fmops.metrics.stats.paired_bootstrap_test with the evaluation's seed and resamples.
    from fmops.lifecycle.evaluation import BOOTSTRAP_SEED, task_statistic

    references = [[g] for g in GOLD]
    expected = paired_bootstrap_test(
        20,
        task_statistic("summarization", "rougeL", references, first),
        task_statistic("summarization", "rougeL", references, second),
        resamples=test["resamples"],
        seed=BOOTSTRAP_SEED,
        alpha=0.05,
    )
    assert (test["delta"], test["delta_ci"], test["p_value"]) == (expected.delta, [expected.low, expected.high], 1.0)


def test_two_close_generative_versions_are_not_significantly_different(aws: FakeAws) -> None:
    outputs = GOLD[:10] + ["nothing to see"] * 10
    swapped = ["nothing to see"] + GOLD[1:10] + [GOLD[10]] + ["nothing to see"] * 9
    register_version(aws, "churn-000000000001", task_run=summarization(outputs))
    register_version(aws, "churn-000000000002", task_run=summarization(swapped))
    (pair,) = registry(aws).compare("churn", [1, 2])["paired_tests"]
    assert pair["test"]["delta"] == pytest.approx(0.0)
    assert not pair["test"]["significant"] and pair["test"]["better"] is None


def test_the_compared_metric_is_the_one_both_versions_gated_on_else_the_tasks_default(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001", task_run=summarization(GOLD, metric="rouge1"))
    register_version(aws, "churn-000000000002", task_run=summarization(GOLD, metric="rouge1"))
    register_version(aws, "churn-000000000003", task_run=summarization(GOLD, metric="rouge2"))
    assert registry(aws).compare("churn", [1, 2])["metric"] == "rouge1"
    mixed = registry(aws).compare("churn", [1, 3])
    assert mixed["metric"] == "rougeL" and mixed["paired_tests"][0]["test"]["metric"] == "rougeL"


def test_qa_versions_compare_on_the_0_100_scale(aws: FakeAws) -> None:
    def qa(outputs: list[str]) -> TaskRun:
        rows = [
            {"line": i + 1, "prompt": f"q{i}", "reference": ["Paris", "paris, france"], "base": "x", "finetuned": o}
            for i, o in enumerate(outputs)
        ]
        return TaskRun("qa", "exact_match", rows, {"f1": 80.0, "exact_match": 70.0}, {"f1": 10.0, "exact_match": 5.0})

    register_version(aws, "churn-000000000001", task_run=qa(["Paris"] * 30))
    register_version(aws, "churn-000000000002", task_run=qa(["Lyon"] * 30))
    result = registry(aws).compare("churn", [1, 2])
    assert result["metric"] == "exact_match" and list(result["metrics"]) == ["f1", "exact_match"]
    test = result["paired_tests"][0]["test"]
    assert (test["a_value"], test["b_value"], test["delta"]) == (100.0, 0.0, -100.0)
    assert test["better"] == 1


def test_multilabel_versions_compare_on_f1_micro_of_their_label_sets(aws: FakeAws) -> None:
    def multilabel(predicted: list[list[str]]) -> TaskRun:
        rows = [
            {"line": i + 1, "text": f"t{i}", "reference": ["billing", "urgent"], "base": [], "finetuned": p}
            for i, p in enumerate(predicted)
        ]
        metrics = {"f1_micro": 0.5, "f1_macro": 0.5, "f1_samples": 0.5, "subset_accuracy": 0.5, "hamming_loss": 0.2}
        return TaskRun("multilabel", "f1_micro", rows, metrics, {**metrics, "f1_micro": 0.1})

    register_version(aws, "churn-000000000001", task_run=multilabel([["urgent", "billing"]] * 12))
    register_version(aws, "churn-000000000002", task_run=multilabel([["billing"]] * 12))
    result = registry(aws).compare("churn", [2, 1])
    # The gate metrics, then what else the task reports.
    assert list(result["metrics"]) == ["f1_micro", "f1_macro", "f1_samples", "subset_accuracy", "hamming_loss"]
    test = result["paired_tests"][0]["test"]
    assert (test["metric"], test["a_value"], test["b_value"]) == ("f1_micro", pytest.approx(2 / 3), 1.0)
    assert test["better"] == 1


def test_versions_of_different_tasks_are_refused(aws: FakeAws) -> None:
    register_version(aws, "churn-000000000001")
    register_version(aws, "churn-000000000002", task_run=summarization(GOLD))
    with pytest.raises(RequestValidationError) as err:
        registry(aws).compare("churn", [1, 2])
    assert err.value.field == "versions"
    assert "versions of different tasks cannot be compared (v1 classification, v2 summarization)" in str(err.value)


def test_malformed_generative_predictions_say_which_line_and_field(aws: FakeAws) -> None:
    bad = summarization(GOLD)
    bad.rows[2]["finetuned"] = ["not", "a", "text"]
    register_version(aws, "churn-000000000001", task_run=summarization(GOLD))
    register_version(aws, "churn-000000000002", task_run=bad)
    (pair,) = registry(aws).compare("churn", [1, 2])["paired_tests"]
    assert pair["test"] is None
    assert "version 2: per-example predictions not readable" in pair["reason"]
    assert "line 3: field 'finetuned' must be the generated text" in pair["reason"]


def test_generative_predictions_that_disagree_on_the_references_are_not_paired(aws: FakeAws) -> None:
    other = summarization(GOLD)
    other.rows[4]["reference"] = ["another summary"]
    register_version(aws, "churn-000000000001", task_run=summarization(GOLD))
    register_version(aws, "churn-000000000002", task_run=other)
    (pair,) = registry(aws).compare("churn", [1, 2])["paired_tests"]
    assert pair["test"] is None and pair["reason"] == "the predictions disagree on the references of test line 5"
