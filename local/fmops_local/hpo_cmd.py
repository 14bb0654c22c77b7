"""``fmops hpo results RUN``: every configuration a run's hyperparameter tuning tried, ranked by the objective.

    fmops hpo results RUN [--format table|json|csv] [--api-url URL] [--region REGION]

The run record (``GET /runs/RUN`` through the SigV4-signed API, as ``fmops runs show``) names the tuning job. Once
the workflow recorded the results, they are read from ``tuning.json`` (``s3://<reports>/runs/RUN/tuning.json``);
while the tuning job still runs (or if it failed before the results were recorded) its training jobs are listed
from SageMaker and ranked the same way (``fmops.lifecycle.tuning.rank_trials``). The S3 and SageMaker reads use
your AWS credentials (``AWS_ENDPOINT_URL`` for the local AWS). Rows: rank, training job, status, objective value,
each tuned hyperparameter; the best job is marked ``*``.
Exit codes: 0 listed, 1 an unknown run, a run without tuning, an unreachable API or AWS (one line on stderr),
2 usage errors.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
from typing import Any

PROG = "fmops hpo results"
_RUN_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


class HpoError(Exception):
    """Exit code 1: the one line printed on stderr."""


def run_id_arg(value: str) -> str:
    if not _RUN_ID.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a run id (lower-case letters, digits, '-', max 40)")
    return value


# ------------------------------------------------------------------------------------------------ reading


def _aws_client(service: str, region: str | None) -> Any:
    """A boto3 client; with no credentials of your own, the ones ``fmops local up`` wrote (as ``fmops approve``)."""
    import boto3

    from fmops_local.cli import _local_env

    local = _local_env()
    if not os.environ.get("AWS_ACCESS_KEY_ID") and local.get("AWS_ACCESS_KEY_ID"):
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=region or local.get("AWS_DEFAULT_REGION"),
            aws_access_key_id=local["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=local["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=local.get("AWS_ENDPOINT_URL"),
        )
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def results_from_s3(uri: str, region: str | None) -> dict[str, Any]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = _aws_client("s3", region).get_object(Bucket=bucket, Key=key)["Body"].read()
    document: dict[str, Any] = json.loads(body)
    return document


def results_from_sagemaker(run_id: str, tuning: dict[str, Any], region: str | None) -> dict[str, Any]:
    """The tuning job as it is now, ranked as ``tuning.json`` ranks it."""
    from fmops.aws.sagemaker import SageMakerTuning
    from fmops.lifecycle._common import iso, utcnow
    from fmops.lifecycle.tuning import rank_trials, tuning_report

    api = SageMakerTuning(_aws_client("sagemaker", region))
    description = api.describe_tuning_job(str(tuning["job_name"]))
    objective = (description.get("HyperParameterTuningJobConfig") or {}).get("HyperParameterTuningJobObjective") or {}
    best = (description.get("BestTrainingJob") or {}).get("TrainingJobName")
    trials = rank_trials(api.list_training_jobs(str(tuning["job_name"])), objective.get("Type", "Maximize"), best)
    return tuning_report(description, trials, run_id=run_id, recorded_at=iso(utcnow()))


def load_results(run_id: str, client: Any, region: str | None) -> dict[str, Any]:
    """The run's tuning results (``tuning.json`` when recorded, else the tuning job now).

    Raises:
        HpoError: an unknown run, a run without tuning, an API or AWS error.
    """
    import requests
    from botocore.exceptions import BotoCoreError, ClientError

    from fmops.errors import FmopsError
    from fmops_local.api_client import ApiError

    try:
        record = client.run(run_id)
    except ApiError as exc:
        if exc.status == 404:
            raise HpoError(f"no run {run_id}") from None
        raise HpoError(exc.message) from None
    except requests.RequestException as exc:
        raise HpoError(f"cannot reach the API at {client.base_url}: {exc}") from None
    tuning = record.get("tuning")
    if not isinstance(tuning, dict) or not tuning.get("job_name"):
        raise HpoError(f"run {run_id} has no hyperparameter tuning (its request has no 'tuning')")
    try:
        if tuning.get("results_uri"):
            return results_from_s3(str(tuning["results_uri"]), region)
        return results_from_sagemaker(run_id, tuning, region)
    except (ClientError, BotoCoreError, FmopsError) as exc:
        raise HpoError(f"tuning job {tuning['job_name']}: {exc}") from None


# ------------------------------------------------------------------------------------------------ rendering


def _value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def tuned_names(results: dict[str, Any]) -> list[str]:
    return sorted({name for trial in results.get("trials") or [] for name in trial.get("hyperparameters") or {}})


def rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    objective = (results.get("objective") or {}).get("metric") or "objective"
    names = tuned_names(results)
    headers = ["RANK", "BEST", "TRAINING JOB", "STATUS", objective.upper(), *[n.upper() for n in names]]
    body = [
        [
            str(trial.get("rank") or "-"),
            "*" if trial.get("best") else "",
            str(trial.get("training_job_name")),
            str(trial.get("status")),
            _value(trial.get("objective_value")),
            *[str((trial.get("hyperparameters") or {}).get(n, "-")) for n in names],
        ]
        for trial in results.get("trials") or []
    ]
    return headers, body


def render_table(results: dict[str, Any]) -> str:
    from fmops_local.models_cmd import table

    objective = results.get("objective") or {}
    trials = results.get("trials") or []
    best = results.get("best") or {}
    header = (
        f"tuning job {results.get('tuning_job_name')} ({results.get('status')}, {results.get('strategy')}): "
        f"{len(trials)} training job{'s' if len(trials) != 1 else ''}, "
        f"{str(objective.get('type', '')).lower()} {objective.get('metric')}"
    )
    lines = [header, table(*rows(results))]
    if best:
        lines.append(
            f"best: {best.get('training_job_name')} ({objective.get('metric')} {_value(best.get('objective_value'))})"
        )
    elif results.get("failure_reason"):
        lines.append(f"no best job: {results['failure_reason']}")
    return "\n".join(lines)


def render_csv(results: dict[str, Any]) -> str:
    """One row per training job, ranked; full-precision objective values."""
    names = tuned_names(results)
    objective = (results.get("objective") or {}).get("metric") or "objective"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "best", "training_job", "status", objective, *names])
    for trial in results.get("trials") or []:
        value = trial.get("objective_value")
        writer.writerow(
            [
                trial.get("rank") or "",
                "true" if trial.get("best") else "false",
                trial.get("training_job_name"),
                trial.get("status"),
                "" if value is None else repr(float(value)),
                *[(trial.get("hyperparameters") or {}).get(n, "") for n in names],
            ]
        )
    return out.getvalue().rstrip("\n")


# ------------------------------------------------------------------------------------------------ command


def cmd_results(args: argparse.Namespace) -> int:
    from fmops_local.cli import _api_client

    try:
        results = load_results(args.run_id, _api_client(args), args.region)
    except HpoError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(results, indent=2, default=str))
    elif args.format == "csv":
        print(render_csv(results))
    else:
        print(render_table(results))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``fmops hpo ...`` on the ``fmops`` subparsers; returns the ``hpo`` parser."""
    hpo = subparsers.add_parser(
        "hpo",
        help="hyperparameter tuning: every configuration a run tried, ranked",
        description="Hyperparameter tuning of runs with 'tuning' (docs/TUNING.md).",
    )
    actions = hpo.add_subparsers(dest="action", required=True)
    results = actions.add_parser(
        "results",
        help="every configuration of a run's tuning job, ranked by the objective (best marked *)",
        description="Every configuration of a run's tuning job, ranked by the objective (best marked *).",
    )
    results.add_argument("run_id", metavar="RUN", type=run_id_arg, help="the run id (the execution name)")
    results.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format (table)")
    results.add_argument("--api-url", help="the API's URL (default: FMOPS_API_URL or `fmops local up`'s)")
    results.add_argument("--region", help="the region (default: AWS_DEFAULT_REGION)")
    results.set_defaults(func=cmd_results)
    return hpo
