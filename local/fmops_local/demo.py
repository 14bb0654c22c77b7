"""``fmops demo``: the whole lifecycle on the local AWS, on a generated data set.

upload → S3 event → ingestion → validate/split → train (real) → evaluate (base vs fine-tuned) →
register → approval (through the REST API, as a person does) → deploy → 20 predictions.

``--task classification`` (the default): all-MiniLM-L6-v2 learns review sentiment (fmops_local/sample_data.py).
``--task chat``: SmolLM2-135M-Instruct is instruction-tuned with LoRA to route support tickets
(fmops_local/sample_tickets.py); the base model answers in free text, the tuned one with the team.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmops_local.api_client import ApiClient
from fmops_local.aws import LocalAws
from fmops_local.follow import ExecutionFollower, Printer
from fmops_local.sample_data import generate
from fmops_local.sample_tickets import generate_tickets

USE_CASE = "reviews"
CHAT_USE_CASE = "tickets"
# Measured on the 2-core machine: 320 training pairs, LoRA r8 on q/v, lr 2e-3, 4 per batch, bf16 CPU autocast,
# one epoch (about 80 steps): exact match 0 → 95 % on held-out tickets.
CHAT_DEFAULTS = {"records": 400, "learning_rate": 2e-3, "batch_size": 4, "max_length": 96, "threshold": 60.0}


@dataclass
class DemoConfig:
    records: int = 2400
    seed: int = 7
    epochs: int = 1
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_length: int = 32
    threshold: float = 0.8
    predictions: int = 20
    interactive: bool = False
    api_port: int = 0
    server_port: int | None = None
    out_dir: Path = Path("demo-output")
    approval_timeout_seconds: int = 3600
    poll_seconds: int = 2
    task: str = "classification"  # or "chat"

    @classmethod
    def for_task(cls, task: str, **overrides: Any) -> DemoConfig:
        """The demo's settings for ``task``; ``overrides`` (None values ignored) win."""
        base: dict[str, Any] = dict(CHAT_DEFAULTS) if task == "chat" else {}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(task=task, **base)

    @property
    def use_case(self) -> str:
        return CHAT_USE_CASE if self.task == "chat" else USE_CASE


def use_case_config(cfg: DemoConfig) -> dict[str, Any]:
    """The use case's run settings, stored beside its data as ``datasets/<use_case>/fmops.json``."""
    if cfg.task == "chat":
        return {
            "backend": "sagemaker",
            "task": "chat",
            "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "hyperparameters": {
                "epochs": str(cfg.epochs),
                "learning_rate": str(cfg.learning_rate),
                "batch_size": str(cfg.batch_size),
                "max_length": str(cfg.max_length),
                "seed": str(cfg.seed),
                "lora_r": "8",
                "lora_target_modules": "q_proj,v_proj",
                "bf16": "true",  # CPU autocast: about 3x the fp32 matmul speed on these machines
                "max_new_tokens": "8",
            },
            "instance_type": "ml.g5.xlarge",
            "instance_count": 1,
            "metric": "exact_match",
            "threshold": cfg.threshold,
            "split": {"ratios": [0.8, 0.1, 0.1], "seed": cfg.seed},
            "approval_timeout_seconds": cfg.approval_timeout_seconds,
            "poll_seconds": cfg.poll_seconds,
        }
    return {
        "backend": "sagemaker",
        "task": "classification",
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "hyperparameters": {
            "epochs": str(cfg.epochs),
            "learning_rate": str(cfg.learning_rate),
            "batch_size": str(cfg.batch_size),
            "max_length": str(cfg.max_length),
            "seed": str(cfg.seed),
        },
        "instance_type": "ml.g5.xlarge",
        "instance_count": 1,
        "metric": "accuracy",
        "threshold": cfg.threshold,
        "split": {"ratios": [0.8, 0.1, 0.1], "seed": cfg.seed},
        "approval_timeout_seconds": cfg.approval_timeout_seconds,
        "poll_seconds": cfg.poll_seconds,
    }


def _find_execution(sfn: Any, state_machine_arn: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executions = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
        if executions:
            return str(sorted(executions, key=lambda e: e["startDate"])[-1]["executionArn"])
        time.sleep(0.2)
    raise TimeoutError("no workflow started after the upload: is the ingestion rule deployed?")


def _metrics(output: dict[str, Any], which: str) -> dict[str, float]:
    evaluation = output.get("evaluation") or {}
    metrics = evaluation.get(f"{which}_metrics") or {}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


def run_demo(cfg: DemoConfig, echo: Printer = print) -> dict[str, Any]:
    started = time.monotonic()
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    aws = LocalAws(server_port=cfg.server_port)
    aws.start()
    try:
        echo("fmops demo — the fine-tuning lifecycle on the local AWS (no AWS account, no Docker)")
        stack = aws.deploy()
        api = aws.start_api(port=cfg.api_port)
        echo(f"  stack {stack.name} deployed: {len(stack.resources)} resources; API at {api.url}")
        client = ApiClient(api.url, region=aws.region)
        if cfg.interactive:
            _write_local_env(aws, api.url)

        inbox = _subscribe_inbox(aws, stack.output("NotificationTopicArn"))
        chat = cfg.task == "chat"
        records = generate_tickets(cfg.records, seed=cfg.seed) if chat else generate(cfg.records, seed=cfg.seed)
        bucket = stack.output("DatasetsBucketName")
        s3 = aws.client("s3")
        s3.put_object(
            Bucket=bucket,
            Key=f"datasets/{cfg.use_case}/fmops.json",
            Body=json.dumps(use_case_config(cfg)).encode(),
        )
        body = "".join(json.dumps(r) + "\n" for r in records).encode()
        key = f"datasets/{cfg.use_case}/{cfg.use_case}.jsonl"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        origin = "sample_tickets.py" if chat else "sample_data.py"
        echo(f"  uploaded s3://{bucket}/{key} ({len(records)} records, generated; see fmops_local/{origin})")

        sfn, logs = aws.client("stepfunctions"), aws.client("logs")
        execution_arn = _find_execution(sfn, stack.output("FinetuneStateMachineArn"))
        run_id = execution_arn.rsplit(":", 1)[-1]
        echo(f"  the S3 event started run {run_id}")
        follower = ExecutionFollower(sfn, logs, execution_arn, echo)

        def approval_pending() -> bool:
            try:
                client.approval(run_id)
                return True
            except Exception:
                return False

        status = follower.wait(until=approval_pending)
        if status == "RUNNING":
            pending = client.approval(run_id)
            echo(
                f"  pending approval of {pending.get('model_package_arn')}: {pending.get('metric')} "
                f"{pending.get('value')} (threshold {pending.get('threshold')})"
            )
            for subject, message in _read_inbox(aws, inbox):
                echo(f"  notification sent (SNS): {subject}")
                echo("    " + message.strip().replace("\n", "\n    "))
            if cfg.interactive:
                echo(
                    f"  waiting for a person: run `fmops approve {run_id} --reason '...'` "
                    f"(or `fmops reject ...`) in another terminal"
                )
            else:
                echo(f"  approving as the person would: fmops approve {run_id} --reason 'demo: metrics reviewed'")
                client.decide(run_id, "approve", "demo: metrics reviewed")
            status = follower.wait()
        describe = sfn.describe_execution(executionArn=execution_arn)
        output = json.loads(describe.get("output") or "{}")
        summary: dict[str, Any] = {
            "run_id": run_id,
            "execution_status": status,
            "base_metrics": _metrics(output, "base"),
            "finetuned_metrics": _metrics(output, "finetuned"),
            "model_package_arn": (output.get("model_package") or {}).get("model_package_arn"),
            "endpoint_name": (output.get("deployment") or {}).get("endpoint_name"),
            "predictions": 0,
        }
        if status != "SUCCEEDED":
            summary["error"] = describe.get("error")
            summary["cause"] = describe.get("cause")
        else:
            summary.update(_predict(aws, summary["endpoint_name"], cfg, echo))
        summary["elapsed_seconds"] = round(time.monotonic() - started, 1)
        (cfg.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        _print_summary(summary, echo, cfg.out_dir / "summary.json")
        return summary
    finally:
        aws.stop()


def _subscribe_inbox(aws: LocalAws, topic_arn: str) -> str:
    """An SQS queue subscribed to the stack's topic: what a subscriber (a person's e-mail) would receive."""
    sqs = aws.client("sqs")
    url = str(sqs.create_queue(QueueName="demo-inbox")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _read_inbox(aws: LocalAws, url: str) -> list[tuple[str, str]]:
    sqs = aws.client("sqs")
    out = []
    for msg in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        body = json.loads(msg["Body"])
        out.append((str(body.get("Subject")), str(body.get("Message"))))
        sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    return out


def _predict(aws: LocalAws, endpoint: str, cfg: DemoConfig, echo: Printer) -> dict[str, Any]:
    rt = aws.client("sagemaker-runtime")
    if cfg.task == "chat":
        return _predict_chat(rt, endpoint, cfg, echo)
    held_out = generate(cfg.predictions, seed=cfg.seed + 1000)
    correct = 0
    echo(f"  {cfg.predictions} predictions through endpoint {endpoint}:")
    for rec in held_out:
        resp = rt.invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Body=json.dumps({"inputs": rec["text"]})
        )
        pred = json.loads(resp["Body"].read())["predictions"][0]
        ok = pred["label"] == rec["label"]
        correct += ok
        echo(f"    {'✓' if ok else '✗'} {rec['text'][:60]!r:64} → {pred['label']} ({pred['score']:.2f})")
    return {"predictions": cfg.predictions, "prediction_accuracy": correct / cfg.predictions}


def _predict_chat(rt: Any, endpoint: str, cfg: DemoConfig, echo: Printer) -> dict[str, Any]:
    held_out = generate_tickets(cfg.predictions, seed=cfg.seed + 1000)
    body = {"inputs": [r["prompt"] for r in held_out], "parameters": {"max_new_tokens": 8}}
    resp = rt.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=json.dumps(body))
    answers = [p["generated_text"] for p in json.loads(resp["Body"].read())["predictions"]]
    echo(f"  {cfg.predictions} tickets routed through endpoint {endpoint} (one batched request):")
    correct = 0
    for rec, answer in zip(held_out, answers, strict=True):
        ok = answer.strip().lower() == rec["completion"]
        correct += ok
        ticket = rec["prompt"].rsplit("Ticket: ", 1)[-1]
        echo(f"    {'✓' if ok else '✗'} {ticket[:60]!r:64} → {answer!r}")
    return {"predictions": cfg.predictions, "prediction_accuracy": correct / cfg.predictions}


def _print_summary(summary: dict[str, Any], echo: Printer, written: Path) -> None:
    echo("")
    echo(f"Run {summary['run_id']}: {summary['execution_status']} in {summary['elapsed_seconds']} s")
    base, tuned = summary["base_metrics"], summary["finetuned_metrics"]
    for name in ("accuracy", "f1_macro", "exact_match", "rougeL"):
        if name in base or name in tuned:
            echo(
                f"  {name:10} base {base.get(name, float('nan')):.3f} → fine-tuned {tuned.get(name, float('nan')):.3f}"
            )
    if summary.get("model_package_arn"):
        echo(f"  model package {summary['model_package_arn']}")
    if summary.get("endpoint_name"):
        echo(
            f"  endpoint {summary['endpoint_name']}: {summary.get('predictions')} predictions, "
            f"accuracy {summary.get('prediction_accuracy', 0):.2f}"
        )
    if summary.get("error"):
        echo(f"  error {summary['error']}: {summary.get('cause')}")
    echo(f"  written: {written}")


def _write_local_env(aws: LocalAws, api_url: str) -> None:
    from fmops_local.aws import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY

    env_dir = Path(os.environ.get("FMOPS_LOCAL_DIR", ".fmops-local"))
    env_dir.mkdir(exist_ok=True)
    (env_dir / "env.json").write_text(
        json.dumps(
            {
                "FMOPS_API_URL": api_url,
                "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
                "AWS_DEFAULT_REGION": aws.region,
                **({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws.server_port}"} if aws.server_port else {}),
            },
            indent=2,
        )
    )


def default_out_dir() -> Path:
    return Path(os.environ.get("FMOPS_DEMO_OUT", "demo-output"))


__all__ = ["DemoConfig", "run_demo", "default_out_dir"]
