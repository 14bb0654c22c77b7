"""`fmops models ...` against the deployed stack: RegisterModelFunction registers versions (as the workflow
would, with their manifests, evaluations and predictions in S3), the CLI reads and decides them through the
SigV4-signed API front."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fmops_local.models_cmd import add_parser

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events"
GROUP = "modelscli"
OPERATOR = "arn:aws:iam::123456789012:user/local-operator"
SPLIT_A, SPLIT_B = "a" * 64, "b" * 64


def fmops_models(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fmops")
    sub = parser.add_subparsers(dest="group", required=True)
    add_parser(sub)
    args = parser.parse_args(["models", *argv])
    return int(args.func(args))


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def register(
    stack_aws: Any,
    run_id: str,
    correct: list[bool],
    test_sha256: str,
    *,
    group: str = GROUP,
    generated: list[str] | None = None,
) -> dict[str, Any]:
    """Put the run's manifest, evaluation.json and predictions in S3, then invoke RegisterModelFunction (a chat
    run's when ``generated`` holds its replies: right where ``correct``, else "sorry")."""
    s3, lam = stack_aws.client("s3"), stack_aws.client("lambda")
    datasets = stack_aws.stack.output("DatasetsBucketName")
    artifacts = stack_aws.stack.output("ArtifactsBucketName")
    reports = stack_aws.stack.output("ReportsBucketName")
    event = copy.deepcopy(json.loads((EVENTS / "register_model.json").read_text()))
    event["run"].update(run_id=run_id, use_case=group)
    event["run"]["dataset"].update(bucket=datasets, key=f"datasets/{group}/data.jsonl")
    prefix = f"datasets/{group}/{run_id}-v/"
    manifest = {"splits": {"test": {"sha256": test_sha256}, "train": {"sha256": "c" * 64}}}
    s3.put_object(Bucket=datasets, Key=prefix + "manifest.json", Body=json.dumps(manifest).encode())
    event["dataset"].update(
        source_uri=f"s3://{datasets}/datasets/{group}/data.jsonl",
        manifest_uri=f"s3://{datasets}/{prefix}manifest.json",
        test_uri=f"s3://{datasets}/{prefix}test.jsonl",
    )
    event["training"].update(
        job_name=f"{run_id}-train",
        job_arn=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{run_id}-train",
        model_artifacts_uri=f"s3://{artifacts}/training/{run_id}/output/model.tar.gz",
    )
    labels = ("churn", "stay")
    rows = [
        {
            "line": i + 1,
            "text": f"message {i}",
            "reference": labels[i % 2],
            "base": labels[(i + 1) % 2],
            "finetuned": labels[i % 2] if right else labels[(i + 1) % 2],
        }
        for i, right in enumerate(correct)
    ]
    if generated is not None:
        rows = [
            {
                "line": i + 1,
                "prompt": f"q{i}",
                "reference": [gold],
                "base": "sorry",
                "finetuned": gold if right else "sorry",
            }
            for i, (gold, right) in enumerate(zip(generated, correct, strict=True))
        ]
        metrics = {"rougeL": sum(correct) / len(correct), "rouge1": 0.5, "rouge2": 0.25, "rougeLsum": 0.5}
        metrics.update(exact_match=100.0 * sum(correct) / len(correct), f1=60.0)
        event["run"].update(
            task="chat", metric="rougeL", threshold=None, base_model="HuggingFaceTB/SmolLM2-135M-Instruct"
        )
        event["evaluation"].update(metric="rougeL", finetuned_metrics=metrics, base_metrics=dict.fromkeys(metrics, 0.0))
    s3.put_object(Bucket=artifacts, Key=f"evaluation/{run_id}/predictions.jsonl", Body=_jsonl(rows))
    evaluation = {"run_id": run_id, "predictions_uri": f"s3://{artifacts}/evaluation/{run_id}/predictions.jsonl"}
    s3.put_object(Bucket=reports, Key=f"runs/{run_id}/evaluation.json", Body=json.dumps(evaluation).encode())
    event["evaluation"].update(
        test_count=len(correct),
        evaluation_uri=f"s3://{reports}/runs/{run_id}/evaluation.json",
        report_uri=f"s3://{reports}/runs/{run_id}/report.html",
    )
    if generated is None:
        event["evaluation"]["finetuned_metrics"]["accuracy"] = sum(correct) / len(correct)
    response = lam.invoke(
        FunctionName=stack_aws.stack.resources["RegisterModelFunction"], Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return dict(payload)


@pytest.fixture(scope="module")
def versions(stack_aws: Any) -> list[dict[str, Any]]:
    first = [True] * 10 + [False] * 2 + [True] * 20
    second = [False] * 10 + [True] * 2 + [True] * 20
    return [
        register(stack_aws, "modelscli-000000000001", first, SPLIT_A),
        register(stack_aws, "modelscli-000000000002", second, SPLIT_A),
        register(stack_aws, "modelscli-000000000003", [True] * 8, SPLIT_B),
    ]


def test_list_show_and_lineage(stack_aws: Any, versions: list[dict[str, Any]], capsys: Any) -> None:
    url = ["--api-url", stack_aws.api.url]
    assert [v["version"] for v in versions] == [1, 2, 3]

    assert fmops_models(["list", GROUP, *url, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in listed["versions"]] == [3, 2, 1]
    assert {v["status"] for v in listed["versions"]} == {"PendingManualApproval"}

    assert fmops_models(["list", GROUP, *url]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{GROUP}: 3 versions"
    assert out.splitlines()[1].split() == [
        "VERSION", "STATUS", "CREATED", "RUN", "BACKEND", "ACCURACY", "F1_MACRO", "BASE_ACC", "REPORT"
    ]  # fmt: skip
    assert "modelscli-000000000001" in out and "0.9375" in out

    assert fmops_models(["show", GROUP, "2", *url, "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run_id"] == "modelscli-000000000002" and shown["inference"]["containers"][0]["program"]
    assert fmops_models(["show", GROUP, "2", *url]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{GROUP} version 2: PendingManualApproval") and "approval history: none" in out

    assert fmops_models(["lineage", GROUP, "1", *url, "--format", "json"]) == 0
    lineage = json.loads(capsys.readouterr().out)
    assert lineage["dataset"]["test_sha256"] == SPLIT_A
    assert lineage["dataset"]["uri"].endswith(f"/datasets/{GROUP}/data.jsonl")
    assert lineage["training"]["training_job_arn"].endswith(":training-job/modelscli-000000000001-train")
    assert len(lineage["code"]["sha256"]) == 64  # the stack's published training code archive
    assert lineage["hyperparameters"]["epochs"] == "1"
    assert fmops_models(["lineage", GROUP, "1", *url]) == 0
    assert "test split sha256:" in capsys.readouterr().out


def test_compare(stack_aws: Any, versions: list[dict[str, Any]], capsys: Any) -> None:
    url = ["--api-url", stack_aws.api.url]
    assert fmops_models(["compare", GROUP, "1", "2", "3", *url, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["accuracy"] == {"1": 0.9375, "2": 0.6875, "3": 1.0}
    pairs = {(p["a"], p["b"]): p for p in result["paired_tests"]}
    test = pairs[(1, 2)]["test"]
    assert (test["only_a_correct"], test["only_b_correct"]) == (10, 2) and test["better"] == 1
    assert test["p_value"] == pytest.approx(158 / 4096)
    assert pairs[(1, 3)]["test"] is None and "different test splits" in pairs[(1, 3)]["reason"]

    assert fmops_models(["compare", GROUP, "1", "2", *url]) == 0
    out = capsys.readouterr().out
    assert "v1 vs v2: 32 examples, only v1 right 10, only v2 right 2, p = 0.03857 (exact): v1 is better" in out


CHAT = "modelscli-chat"
REPLIES = [f"your order {i} ships on monday" for i in range(30)]


def test_generative_versions_show_their_metrics_and_compare_by_bootstrap(
    stack_aws: Any, versions: list[dict[str, Any]], capsys: Any
) -> None:
    url = ["--api-url", stack_aws.api.url]
    register(stack_aws, "modelscli-chat-000000001", [True] * 24 + [False] * 6, SPLIT_A, group=CHAT, generated=REPLIES)
    register(stack_aws, "modelscli-chat-000000002", [True] * 6 + [False] * 24, SPLIT_A, group=CHAT, generated=REPLIES)

    assert fmops_models(["list", CHAT, *url]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == [
        "VERSION", "STATUS", "CREATED", "RUN", "BACKEND", "ROUGEL", "ROUGE1", "BASE_ROUGEL", "REPORT"
    ]  # fmt: skip
    assert "0.8000" in out and "n/a" not in out
    assert fmops_models(["show", CHAT, "1", *url]) == 0
    out = capsys.readouterr().out
    assert "task:" in out and "chat" in out and "rougeL 0.8000" in out and "accuracy" not in out

    assert fmops_models(["compare", CHAT, "1", "2", *url, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["task"], result["test"], result["metric"]) == ("chat", "paired_bootstrap", "rougeL")
    (pair,) = result["paired_tests"]
    assert pair["test"]["better"] == 1 and pair["test"]["delta"] < 0 and "only_a_correct" not in pair["test"]
    assert fmops_models(["compare", CHAT, "1", "2", *url]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{CHAT}: versions 1, 2 (task chat)"
    assert "paired bootstrap of rougeL" in out and "McNemar" not in out
    assert "v1 vs v2: 30 examples, rougeL v1 " in out and "(one-sided): v1 is better at alpha 0.05" in out

    # A classification version in the same group cannot be compared with them.
    register(stack_aws, "modelscli-chat-000000003", [True] * 30, SPLIT_A, group=CHAT)
    assert fmops_models(["compare", CHAT, "1", "3", *url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fmops models compare: versions of different tasks cannot be compared (v1 chat, ")
    assert fmops_models(["list", CHAT, *url]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == [
        "VERSION", "STATUS", "CREATED", "RUN", "BACKEND", "TASK", "METRIC", "VALUE", "BASE", "REPORT"
    ]  # fmt: skip
    assert "classification  accuracy" in out and "chat            rougeL" in out


def test_approve_then_reject(stack_aws: Any, versions: list[dict[str, Any]], capsys: Any) -> None:
    url = ["--api-url", stack_aws.api.url]
    assert fmops_models(["approve", GROUP, "1", "--reason", "beats the base model", *url]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{GROUP} version 1: Approved (was PendingManualApproval) by {OPERATOR}")
    assert fmops_models(["reject", GROUP, "1", "--reason", "drifts", *url, "--format", "json"]) == 0
    decided = json.loads(capsys.readouterr().out)
    assert decided["status"] == "Rejected" and decided["who"] == OPERATOR
    assert [(e["decision"], e["reason"]) for e in decided["approval_history"]] == [
        ("approved", "beats the base model"),
        ("rejected", "drifts"),
    ]
    # the full history is in the reports bucket next to the lineage
    reports = stack_aws.stack.output("ReportsBucketName")
    assert decided["approval_history_uri"] == f"s3://{reports}/runs/modelscli-000000000001/approval-history.json"
    body = stack_aws.client("s3").get_object(Bucket=reports, Key="runs/modelscli-000000000001/approval-history.json")
    assert json.loads(body["Body"].read())["approval_history"] == decided["approval_history"]

    assert fmops_models(["show", GROUP, "1", *url]) == 0
    out = capsys.readouterr().out
    assert f"{GROUP} version 1: Rejected" in out and "beats the base model" in out and "drifts" in out


def test_unknown_group_and_version_exit_1_with_one_line(
    stack_aws: Any, versions: list[dict[str, Any]], capsys: Any
) -> None:
    url = ["--api-url", stack_aws.api.url]
    assert fmops_models(["show", GROUP, "99", *url]) == 1
    err = capsys.readouterr().err
    assert err == f"fmops models show: model package group {GROUP} has no version 99\n"
    assert fmops_models(["list", "nosuchgroup", *url]) == 1
    assert capsys.readouterr().err == "fmops models list: no model package group nosuchgroup\n"
    assert fmops_models(["compare", GROUP, "1", "42", *url]) == 1
    assert "has no version 42" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["show", GROUP],
        ["show", GROUP, "latest"],
        ["approve", GROUP, "1"],
        ["approve", GROUP, "1", "--reason", "  "],
        ["list", "not a group"],
        ["lineage", GROUP, "1", "--format", "yaml"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        fmops_models(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_compare_needs_two_versions(capsys: Any) -> None:
    assert fmops_models(["compare", GROUP, "1", "1", "--api-url", "http://127.0.0.1:1/dev"]) == 2
    assert "at least 2 different versions" in capsys.readouterr().err
