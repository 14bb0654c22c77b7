"""The local executor: SageMaker training and processing jobs that really run.

A job created in the local AWS is picked up here: its inputs are downloaded from the local S3 into a
temporary ``/opt/ml``-shaped root, the entry point runs in a subprocess with SageMaker's environment
contract, its output is uploaded back, and the job's status moves InProgress → Completed, or → Failed
with the script's own failure message. Logs go to CloudWatch Logs as they would on AWS.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3

from fmops_local.s3io import download_prefix, extract_tarball, make_tarball, split_s3_uri, upload_dir

LogListener = Callable[[str, str], None]  # (job name, line)

_FAILURE_TAIL_LINES = 8


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ExecutorSettings:
    """How local jobs run."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fmops-jobs-")))
    python: str = sys.executable
    torch_threads: int = max(1, min(2, os.cpu_count() or 1))
    keep_workdirs: bool = False


class LocalExecutor:
    """Runs SageMaker-shaped jobs in subprocesses; one thread per job."""

    def __init__(self, settings: ExecutorSettings | None = None) -> None:
        self.settings = settings or ExecutorSettings()
        self.listeners: list[LogListener] = []
        self._threads: list[threading.Thread] = []
        self._procs: dict[str, subprocess.Popen[str]] = {}

    # -- public -----------------------------------------------------------------------------------
    def submit(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"fmops-job-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, name: str) -> bool:
        proc = self._procs.get(name)
        if proc and proc.poll() is None:
            proc.terminate()
            return True
        return False

    def wait_idle(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()

    # -- training -------------------------------------------------------------------------------
    def run_training_job(self, job: Any, region: str) -> None:
        """Run one moto ``FakeTrainingJob`` for real and record the outcome on it."""
        name = job.training_job_name
        s3 = boto3.client("s3", region_name=region)
        box = _TrainingBox(self.settings.root / "training" / name)
        log = _CloudWatchStream(region, "/aws/sagemaker/TrainingJobs", f"{name}/algo-1-{int(time.time())}")
        try:
            _transition(job, "InProgress", "Downloading", "Downloading input data")
            hps = dict(job.hyper_parameters or {})
            channels = []
            for channel in job.input_data_config or []:
                uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
                download_prefix(s3, uri, box.channel(channel["ChannelName"]))
                channels.append(channel["ChannelName"])
            submit, program = hps.get("sagemaker_submit_directory"), hps.get("sagemaker_program")
            if not submit or not program:
                raise ValueError("hyperparameters sagemaker_program and sagemaker_submit_directory are required")
            program = _fetch_code(s3, submit.strip('"'), program.strip('"'), box.code)
            user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
            _transition(job, "InProgress", "Training", "Training in progress")
            job.training_start_time = _now()
            definitions = (job.algorithm_specification or {}).get("MetricDefinitions", [])
            metrics = _MetricCollector(definitions)
            max_runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
            code, tail = self._train(name, box, program, channels, user_hps, log, metrics.feed, max_runtime)
            log.flush()  # the whole log is readable before the job reports its end
            job.final_metric_data_list = metrics.final()
            job.training_end_time = _now()
            if code != 0:
                _fail(job, _failure_reason(box.output / "failure", tail, code))
                return
            _transition(job, "InProgress", "Uploading", "Uploading generated training model")
            box.upload_model(s3, job.model_artifacts["S3ModelArtifacts"])
            elapsed = (job.training_end_time - job.training_start_time).total_seconds()
            job.training_time_in_seconds = job.billable_time_in_seconds = max(1, int(elapsed))
            _transition(job, "Completed", "Completed", "Training job completed")
        except Exception as exc:  # any local failure is the job's failure, never the caller's
            log.write(f"fmops local executor: {type(exc).__name__}: {exc}")
            _fail(job, f"{type(exc).__name__}: {exc}")
        finally:
            log.flush()
            if not self.settings.keep_workdirs:
                shutil.rmtree(box.root, ignore_errors=True)

    def run_bedrock_job(
        self, job: Any, region: str, code_uri: str, hyperparameters: dict[str, str], on_done: Callable[[str], None]
    ) -> None:
        """Emulate a Bedrock customization job: the same training entry point on the job's JSONL data.

        Bedrock data is prompt/completion; the local stand-in for the foundation model is the bundled
        encoder, trained to predict the completion (the class label) from the prompt. ``on_done`` gets the
        S3 URI of the model artifact, which the local Bedrock runtime serves for the custom model.
        """
        name = job.job_name
        s3 = boto3.client("s3", region_name=region)
        box = _TrainingBox(self.settings.root / "bedrock" / name)
        log = _CloudWatchStream(region, "/aws/bedrock/modelcustomizationjobs", name)
        try:
            _convert_bedrock_channel(s3, job.training_data_config["s3Uri"], box.channel("train"))
            channels = ["train"]
            validators = (job.validation_data_config or {}).get("validators") or []
            if validators:
                _convert_bedrock_channel(s3, validators[0]["s3Uri"], box.channel("validation"))
                channels.append("validation")
            _fetch_code(s3, code_uri, "train.py", box.code)
            losses = _MetricCollector(
                [
                    {"Name": "trainingLoss", "Regex": r"name=train_loss value=([-+0-9.eE]+)"},
                    {"Name": "validationLoss", "Regex": r"name=validation_loss value=([-+0-9.eE]+)"},
                ]
            )
            code, tail = self._train(name, box, "train.py", channels, hyperparameters, log, losses.feed, None)
            final = {m["MetricName"]: m["Value"] for m in losses.final()}
            job.training_metrics = {"trainingLoss": final.get("trainingLoss", 0.0)}
            job.validation_metrics = [{"validationLoss": final.get("validationLoss", 0.0)}]
            if code != 0:
                job.failure_message = _failure_reason(box.output / "failure", tail, code)[:1024]
                job.status = "Failed"
                return
            uri = job.output_data_config["s3Uri"].rstrip("/") + f"/{name}/model.tar.gz"
            box.upload_model(s3, uri)
            on_done(uri)
            job.failure_message = None
            job.status = "Completed"
        except Exception as exc:
            log.write(f"fmops local executor: {type(exc).__name__}: {exc}")
            job.failure_message = f"{type(exc).__name__}: {exc}"
            job.status = "Failed"
        finally:
            job.end_time = job.last_modified_time = _now().strftime("%Y-%m-%d %H:%M:%S")
            log.flush()
            if not self.settings.keep_workdirs:
                shutil.rmtree(box.root, ignore_errors=True)

    def _train(
        self,
        name: str,
        box: _TrainingBox,
        program: str,
        channels: list[str],
        hps: dict[str, str],
        log: _CloudWatchStream,
        on_line: Callable[[str], None] | None,
        max_runtime: int | None,
    ) -> tuple[int, list[str]]:
        """Run a training entry point with SageMaker's environment contract inside ``box``."""
        env = self._base_env()
        env.update(
            {
                "SM_MODEL_DIR": str(box.model),
                "SM_OUTPUT_DIR": str(box.output),
                "SM_OUTPUT_DATA_DIR": str(box.output_data),
                "SM_CHECKPOINT_DIR": str(box.checkpoints),
                "SM_INPUT_DIR": str(box.root / "input"),
                "SM_CHANNELS": json.dumps(channels),
                "SM_HPS": json.dumps(hps),
                "SM_HOSTS": json.dumps(["algo-1"]),
                "SM_CURRENT_HOST": "algo-1",
                "SM_NUM_GPUS": "0",
                "SM_NUM_CPUS": str(self.settings.torch_threads),
                "SM_TRAINING_ENV": json.dumps({"job_name": name, "hyperparameters": hps}),
                "TRAINING_JOB_NAME": name,
            }
        )
        for c in channels:
            env[f"SM_CHANNEL_{c.upper()}"] = str(box.channel(c))
        args = [self.settings.python, program]
        for k, v in hps.items():
            args += [f"--{k}", str(v)]
        return self._run(name, args, box.code, env, log, on_line, max_runtime)

    # -- processing -----------------------------------------------------------------------------
    def run_processing_job(self, job: Any, region: str) -> None:
        """Run one moto ``FakeProcessingJob``: inputs to local paths, container command, outputs back."""
        name = job.processing_job_name
        s3 = boto3.client("s3", region_name=region)
        root = self.settings.root / "processing" / name
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)

        def local(path: str) -> str:
            return path.replace("/opt/ml/processing", str(root / "processing"))

        log = _CloudWatchStream(region, "/aws/sagemaker/ProcessingJobs", f"{name}/algo-1-{int(time.time())}")
        try:
            job.processing_job_status = "InProgress"
            job.processing_start_time = _now()
            for item in job.processing_inputs or []:
                s3_input = item.get("S3Input")
                if s3_input:
                    download_prefix(s3, s3_input["S3Uri"], Path(local(s3_input["LocalPath"])))
            outputs = (job.processing_output_config or {}).get("Outputs", [])
            for item in outputs:
                Path(local(item["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
            spec = job.app_specification or {}
            command = [local(a) for a in spec.get("ContainerEntrypoint", [])]
            command += [local(a) for a in spec.get("ContainerArguments", [])]
            if not command:
                raise ValueError("AppSpecification has no ContainerEntrypoint")
            if command[0] in ("python", "python3"):
                command[0] = self.settings.python
            env = self._base_env()
            env.update({k: local(v) for k, v in (spec.get("Environment") or {}).items()})
            env.update({k: local(v) for k, v in (getattr(job, "environment", None) or {}).items()})
            env["PROCESSING_JOB_NAME"] = name
            max_runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
            code, tail = self._run(name, command, root, env, log, None, max_runtime)
            if code != 0:
                job.processing_job_status = "Failed"
                job.failure_reason = _failure_reason(root / "processing" / "failure", tail, code)
                job.exit_message = job.failure_reason
            else:
                for item in outputs:
                    upload_dir(s3, Path(local(item["S3Output"]["LocalPath"])), item["S3Output"]["S3Uri"])
                job.processing_job_status = "Completed"
        except Exception as exc:
            log.write(f"fmops local executor: {type(exc).__name__}: {exc}")
            job.processing_job_status = "Failed"
            job.failure_reason = f"{type(exc).__name__}: {exc}"
        finally:
            job.processing_end_time = job.last_modified_time = _now()
            log.flush()
            if not self.settings.keep_workdirs:
                shutil.rmtree(root, ignore_errors=True)

    # -- helpers --------------------------------------------------------------------------------
    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.copy().items() if not k.startswith(("AWS_", "MOTO_", "PYTEST"))}
        bin_dir = os.path.dirname(self.settings.python)
        env.update(
            {
                "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
                "PYTHONUNBUFFERED": "1",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": str(self.settings.torch_threads),
                "FMOPS_TORCH_THREADS": str(self.settings.torch_threads),
            }
        )
        # A training container has no access to the control plane (network isolation).
        env.pop("PYTHONPATH", None)
        return env

    def _run(
        self,
        name: str,
        args: list[str],
        cwd: Path,
        env: dict[str, str],
        log: _CloudWatchStream,
        on_line: Callable[[str], None] | None,
        max_runtime: int | None,
    ) -> tuple[int, list[str]]:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._procs[name] = proc
        timer = threading.Timer(max_runtime, proc.kill) if max_runtime else None
        if timer:
            timer.start()
        tail: list[str] = []
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail = (tail + [line])[-_FAILURE_TAIL_LINES:]
            log.write(line)
            if on_line:
                on_line(line)
            for listener in self.listeners:
                listener(name, line)
        code = proc.wait()
        if timer:
            timer.cancel()
        return code, tail


def _fetch_code(s3: Any, source_uri: str, program: str, code_dir: Path) -> str:
    """Unpack a ``sourcedir.tar.gz`` into ``code_dir`` and check that its entry point is there."""
    files = download_prefix(s3, source_uri, code_dir / "_archive")
    extract_tarball(files[0], code_dir)
    shutil.rmtree(code_dir / "_archive", ignore_errors=True)
    if not (code_dir / program).is_file():
        raise FileNotFoundError(f"entry point {program} not found in {source_uri}")
    return program


class _TrainingBox:
    """The ``/opt/ml`` tree of one training job, under a temporary root."""

    def __init__(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)
        self.root = root
        self.model = root / "model"
        self.output = root / "output"
        self.output_data = root / "output" / "data"
        self.checkpoints = root / "checkpoints"
        self.code = root / "code"
        for d in (self.model, self.output_data, self.checkpoints, self.code):
            d.mkdir(parents=True, exist_ok=True)

    def channel(self, name: str) -> Path:
        path = self.root / "input" / "data" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def upload_model(self, s3: Any, uri: str) -> None:
        """``model.tar.gz`` (and ``output.tar.gz`` when the script wrote output data) to S3."""
        archive = make_tarball(self.model, self.root / "model.tar.gz")
        bucket, key = split_s3_uri(uri)
        s3.upload_file(str(archive), bucket, key)
        if any(self.output_data.iterdir()):
            out = make_tarball(self.output_data, self.root / "output.tar.gz")
            s3.upload_file(str(out), bucket, key.rsplit("/", 1)[0] + "/output.tar.gz")


def _text(content: Any) -> str:
    return content if isinstance(content, str) else " ".join(block.get("text", "") for block in content)


def _as_classification(record: dict[str, Any]) -> dict[str, str] | None:
    """A Bedrock training record (prompt/completion or a one-turn conversation) as ``{"text", "label"}``."""
    if "prompt" in record and "completion" in record:
        return {"text": record["prompt"], "label": str(record["completion"]).strip()}
    messages = record.get("messages")
    if isinstance(messages, list) and len(messages) >= 2:
        return {"text": _text(messages[-2]["content"]), "label": _text(messages[-1]["content"]).strip()}
    if "text" in record and "label" in record:
        return {"text": record["text"], "label": record["label"]}
    return None


def _convert_bedrock_channel(s3: Any, uri: str, dest: Path) -> None:
    """Bedrock training JSONL → the classification records of ``train.py`` (the completion, or the
    assistant's turn, is the label)."""
    files = download_prefix(s3, uri, dest / "_raw")
    with open(dest / "data.jsonl", "w", encoding="utf-8") as out:
        for path in files:
            for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                record = _as_classification(json.loads(line))
                if record is None:
                    raise ValueError(f"{uri} line {line_no}: expected prompt/completion or conversation fields")
                out.write(json.dumps(record) + "\n")
    shutil.rmtree(dest / "_raw")


def _transition(job: Any, status: str, secondary: str, message: str) -> None:
    now = _now()
    transitions = getattr(job, "secondary_status_transitions", None) or []
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
    job.secondary_status_transitions = transitions
    job.training_job_status = status
    job.secondary_status = secondary
    job.last_modified_time = now


def _fail(job: Any, reason: str) -> None:
    job.failure_reason = reason[:1024]
    _transition(job, "Failed", "Failed", reason[:256])


def _failure_reason(failure_file: Path, tail: list[str], code: int) -> str:
    if failure_file.is_file():
        text = failure_file.read_text(errors="replace").strip()
        if text:
            return text
    last = " | ".join(line for line in tail if line.strip())
    return f"AlgorithmError: exit code {code}. Last output: {last}"


class _MetricCollector:
    """Applies the job's MetricDefinitions to each log line, as SageMaker does for CloudWatch."""

    def __init__(self, definitions: list[dict[str, str]]) -> None:
        self._defs = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
        self._last: dict[str, tuple[float, dt.datetime]] = {}

    def feed(self, line: str) -> None:
        for name, regex in self._defs:
            match = regex.search(line)
            if match:
                try:
                    self._last[name] = (float(match.group(1)), _now())
                except (ValueError, IndexError):
                    continue

    def final(self) -> list[dict[str, Any]]:
        return [{"MetricName": n, "Value": v, "Timestamp": t} for n, (v, t) in sorted(self._last.items())]


class _CloudWatchStream:
    """Buffers job log lines into a CloudWatch Logs stream of the local AWS."""

    def __init__(self, region: str, group: str, stream: str) -> None:
        self._logs = boto3.client("logs", region_name=region)
        self.group, self.stream = group, stream
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        try:
            self._logs.create_log_group(logGroupName=group)
        except self._logs.exceptions.ResourceAlreadyExistsException:
            pass
        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)

    def write(self, line: str) -> None:
        self._buffer.append({"timestamp": int(time.time() * 1000), "message": line or " "})
        if len(self._buffer) >= 50 or time.monotonic() - self._last_flush > 1.0:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._logs.put_log_events(
                logGroupName=self.group, logStreamName=self.stream, logEvents=cast(Any, self._buffer)
            )
            self._buffer = []
        self._last_flush = time.monotonic()
