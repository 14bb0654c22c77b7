"""The local executor: SageMaker training and processing jobs that really run.

A job created in the local AWS is picked up here: its inputs are downloaded from the local S3 into a
temporary ``/opt/ml``-shaped root, the entry point runs in a subprocess with SageMaker's environment
contract, its output is uploaded back, and the job's status moves InProgress → Completed, or → Failed
with the script's own failure message. Logs go to CloudWatch Logs as they would on AWS.

A training job with ``ResourceConfig.InstanceCount`` N > 1 runs N "hosts" at once, as SageMaker runs N
instances: one process of the entry point per host, each in its own ``/opt/ml``-shaped folder with the whole
of each channel (FullyReplicated), ``SM_HOSTS=["algo-1", ..., "algo-N"]`` and its own ``SM_CURRENT_HOST``.
The hosts share this machine, so they rendezvous on ``FMOPS_MASTER_ADDR=127.0.0.1`` and a free
``FMOPS_MASTER_PORT`` (train.py's torchrun launch reads both) and split the torch threads between them. Each
host logs to its own stream (``<job>/algo-K-<ts>``); the job's final metrics are algo-1's (per-host values are
kept in ``job.host_metrics``); the job fails as soon as any host fails (the others are stopped; the first
failure's reason is the job's) and only algo-1's model folder is uploaded.

StopTrainingJob (``LocalExecutor.stop``) behaves as on AWS for every training job, a tuning job's or not: the job
goes ``Stopping``, each host's process gets SIGTERM (SIGKILL after ``stop_grace_seconds``, SageMaker's 120 s), and
the job ends ``Stopped`` (secondary status Stopped) with no FailureReason, whatever the process exit code: train.py
checkpoints at the next step boundary and exits 143 (its TrainingInterrupted message stays in the log only). The
metrics it printed so far are kept (FinalMetricDataList); no model is uploaded. A job stopped before its entry point
started never starts it. Once Completed, Failed or Stopped, a job's status no longer changes.

A Bedrock customization job runs the same training entry point: classification prompts train the bundled
encoder (the completion is the label), any other data trains a causal LM on the prompt/completion or
conversation lines as they are (task ``chat``; the model is ``FMOPS_LOCAL_BEDROCK_LM``, a local folder or
``s3://`` prefix, default SmolLM2-135M-Instruct).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import shutil
import socket
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
MASTER_ADDR = "127.0.0.1"
# The stand-in for a Bedrock foundation model when the customization data is not classification prompts.
LOCAL_BEDROCK_LM_ENV = "FMOPS_LOCAL_BEDROCK_LM"
CLASSIFICATION_PROMPT_PREFIX = "Classify the text into one of:"
BedrockDone = Callable[[str, "str | None", bool], None]  # (model artifact, base model artifact, generative)
STOPPED_MESSAGE = "Training job stopped"
STOPPED_EXIT_CODE = 143  # 128 + SIGTERM, as train.py exits when stopped
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})


def free_port(host: str = MASTER_ADDR) -> int:
    """A TCP port nothing listens on now (the OS picks it; released at once for the rendezvous to take)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def host_names(count: int) -> list[str]:
    """SageMaker's host names of a job with ``count`` instances: algo-1 ... algo-N."""
    return [f"algo-{k}" for k in range(1, count + 1)]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ExecutorSettings:
    """How local jobs run."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fmops-jobs-")))
    python: str = sys.executable
    torch_threads: int = max(1, min(2, os.cpu_count() or 1))
    keep_workdirs: bool = False
    # After StopTrainingJob's SIGTERM, how long a process may take to exit before SIGKILL (SageMaker: 120 s).
    stop_grace_seconds: float = 120.0


class LocalExecutor:
    """Runs SageMaker-shaped jobs in subprocesses; one thread per job."""

    def __init__(self, settings: ExecutorSettings | None = None) -> None:
        self.settings = settings or ExecutorSettings()
        self.listeners: list[LogListener] = []
        self._threads: list[threading.Thread] = []
        self._procs: dict[str, list[subprocess.Popen[str]]] = {}
        self._procs_lock = threading.Lock()
        # Training jobs running here now (name -> moto job), and the StopTrainingJob message of those asked to stop;
        # both guarded by _procs_lock, with the processes.
        self._training: dict[str, Any] = {}
        self._stop_messages: dict[str, str] = {}

    # -- public -----------------------------------------------------------------------------------
    def submit(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"fmops-job-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, name: str, message: str = STOPPED_MESSAGE) -> bool:
        """StopTrainingJob: training job ``name`` goes Stopping now and ends Stopped, without a FailureReason, once
        its processes (every host's) have exited after SIGTERM (SIGKILL after ``stop_grace_seconds``). ``message`` is
        the StatusMessage of its last secondary status transition. False when no such training job runs here (not
        started yet, or already ended); asking again while it stops changes nothing."""
        with self._procs_lock:
            job = self._training.get(name)
            if job is None:
                return False
            if name not in self._stop_messages:
                self._stop_messages[name] = message
                _transition(job, "Stopping", "Stopping", "Stopping the training job")
        self._terminate(name, self.settings.stop_grace_seconds)
        return True

    def _terminate(self, name: str, grace: float | None = None) -> bool:
        """SIGTERM every running process of job ``name`` (all its hosts), and SIGKILL those still running ``grace``
        seconds later; False when none was running."""
        with self._procs_lock:
            procs = [proc for proc in self._procs.get(name, []) if proc.poll() is None]
        for proc in procs:
            proc.terminate()
        if procs and grace is not None:
            timer = threading.Timer(grace, _kill_running, args=(procs,))
            timer.daemon = True
            timer.start()
        return bool(procs)

    def _stopped(self, name: str) -> bool:
        """Whether StopTrainingJob asked training job ``name`` to stop."""
        with self._procs_lock:
            return name in self._stop_messages

    def _end_training(self, name: str, job: Any, end: Callable[[], None]) -> None:
        """Record the end of training job ``name`` (``end`` sets its final status), or Stopped when it was asked to
        stop: atomically with ``stop``, so a stop either makes the job Stopped or finds it ended."""
        with self._procs_lock:
            self._training.pop(name, None)
            message = self._stop_messages.pop(name, None)
            if message is None:
                end()
                return
            job.failure_reason = None
            _transition(job, "Stopped", "Stopped", message)

    def wait_idle(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        with self._procs_lock:
            procs = [proc for group in self._procs.values() for proc in group]
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    # -- training -------------------------------------------------------------------------------
    def run_training_job(self, job: Any, region: str) -> None:
        """Run one moto ``FakeTrainingJob`` for real (on ``InstanceCount`` hosts) and record the outcome on it."""
        name = job.training_job_name
        _keep_final_status(job)
        with self._procs_lock:
            self._training[name] = job
        s3 = boto3.client("s3", region_name=region)
        count = max(1, int((job.resource_config or {}).get("InstanceCount") or 1))
        hosts = host_names(count)
        root = self.settings.root / "training" / name
        boxes = [_TrainingBox(root if count == 1 else root / host) for host in hosts]
        started = int(time.time())
        logs = [_CloudWatchStream(region, "/aws/sagemaker/TrainingJobs", f"{name}/{host}-{started}") for host in hosts]
        # How the job ends unless it was stopped (then: Stopped, by _end_training), set once its outcome is known.
        end: Callable[[], None] = functools.partial(
            _fail, job, "fmops local executor: the job ended without an outcome"
        )
        try:
            self._progress(name, job, "Downloading", "Downloading input data")
            hps = dict(job.hyper_parameters or {})
            channels = []
            for channel in job.input_data_config or []:
                uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
                download_prefix(s3, uri, boxes[0].channel(channel["ChannelName"]))
                channels.append(channel["ChannelName"])
            submit, program = hps.get("sagemaker_submit_directory"), hps.get("sagemaker_program")
            if not submit or not program:
                raise ValueError("hyperparameters sagemaker_program and sagemaker_submit_directory are required")
            program = _fetch_code(s3, submit.strip('"'), program.strip('"'), boxes[0].code)
            for box in boxes[1:]:  # every instance gets the whole of each channel (FullyReplicated) and the code
                for channel_name in channels:
                    shutil.copytree(boxes[0].channel(channel_name), box.channel(channel_name), dirs_exist_ok=True)
                shutil.copytree(boxes[0].code, box.code, dirs_exist_ok=True)
            user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
            self._progress(name, job, "Training", "Training in progress")
            job.training_start_time = _now()
            definitions = (job.algorithm_specification or {}).get("MetricDefinitions", [])
            collectors = [_MetricCollector(definitions) for _ in hosts]
            max_runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
            if count == 1:
                code, tail = self._train(
                    name, boxes[0], program, channels, user_hps, logs[0], collectors[0].feed, max_runtime
                )
                failure = None if code == 0 else _failure_reason(boxes[0].output / "failure", tail, code)
            else:
                failure = self._train_hosts(
                    name, boxes, hosts, program, channels, user_hps, logs, collectors, max_runtime
                )
            for log in logs:
                log.flush()  # the whole log is readable before the job reports its end
            job.final_metric_data_list = collectors[0].final()  # algo-1's, as SageMaker reports them
            job.host_metrics = {host: c.final() for host, c in zip(hosts, collectors, strict=True)}
            job.training_end_time = _now()
            elapsed = (job.training_end_time - job.training_start_time).total_seconds()
            job.training_time_in_seconds = max(1, int(elapsed))
            job.billable_time_in_seconds = job.training_time_in_seconds * count
            if self._stopped(name):
                return  # Stopped, whatever the exit code (train.py's is 143): recorded by _end_training
            if failure is not None:
                end = functools.partial(_fail, job, failure)
                return
            self._progress(name, job, "Uploading", "Uploading generated training model")
            boxes[0].upload_model(s3, job.model_artifacts["S3ModelArtifacts"])  # algo-1 (rank 0) wrote the model
            end = functools.partial(_transition, job, "Completed", "Completed", "Training job completed")
        except Exception as exc:  # any local failure is the job's failure, never the caller's
            logs[0].write(f"fmops local executor: {type(exc).__name__}: {exc}")
            end = functools.partial(_fail, job, f"{type(exc).__name__}: {exc}")
        finally:
            for log in logs:
                log.flush()
            self._end_training(name, job, end)
            if not self.settings.keep_workdirs:
                shutil.rmtree(root, ignore_errors=True)

    def _progress(self, name: str, job: Any, secondary: str, message: str) -> None:
        """An InProgress secondary status of training job ``name``, unless it is stopping."""
        with self._procs_lock:
            if name not in self._stop_messages:
                _transition(job, "InProgress", secondary, message)

    def _train_hosts(
        self,
        name: str,
        boxes: list[_TrainingBox],
        hosts: list[str],
        program: str,
        channels: list[str],
        hps: dict[str, str],
        logs: list[_CloudWatchStream],
        collectors: list[_MetricCollector],
        max_runtime: int | None,
    ) -> str | None:
        """Run the entry point on every host at once; None when all succeed, else the first failure's reason.

        When one host fails the others are stopped: their peer is gone, and a collective would wait for it.
        """
        threads = max(1, self.settings.torch_threads // len(hosts))
        shared = {
            "SM_HOSTS": json.dumps(hosts),
            "FMOPS_MASTER_ADDR": MASTER_ADDR,
            "FMOPS_MASTER_PORT": str(free_port()),
            "FMOPS_NPROC_PER_NODE": "1",
            "OMP_NUM_THREADS": str(threads),
            "FMOPS_TORCH_THREADS": str(threads),
            "SM_NUM_CPUS": str(threads),
        }
        failures: list[str] = []
        guard = threading.Lock()

        def host(index: int) -> None:
            box, current = boxes[index], hosts[index]
            env = {**shared, "SM_CURRENT_HOST": current}
            code, tail = self._train(
                name, box, program, channels, hps, logs[index], collectors[index].feed, max_runtime, env, current
            )
            if code == 0:
                return
            with guard:
                first = not failures
                failures.append(f"{current}: {_failure_reason(box.output / 'failure', tail, code)}")
            if first:
                self._terminate(name)

        workers = [
            threading.Thread(target=host, args=(i,), name=f"fmops-job-{name}-{hosts[i]}", daemon=True)
            for i in range(len(hosts))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return failures[0] if failures else None

    def run_bedrock_job(
        self, job: Any, region: str, code_uri: str, hyperparameters: dict[str, str], on_done: BedrockDone
    ) -> None:
        """Emulate a Bedrock customization job: the same training entry point on the job's JSONL data.

        Classification prompts (``Classify the text into one of: ...``) train the bundled encoder to predict the
        completion (the class label) from the prompt; any other data trains a causal LM (task ``chat``) on the
        prompt/completion or conversation lines as they are, starting from ``FMOPS_LOCAL_BEDROCK_LM`` (default:
        train.py's SmolLM2-135M-Instruct). ``on_done`` gets the S3 URI of the model artifact, which the local
        Bedrock runtime serves for the custom model, the artifact of the generative base model (its untrained
        starting point, None for classification) and whether the model is generative.
        """
        name = job.job_name
        s3 = boto3.client("s3", region_name=region)
        box = _TrainingBox(self.settings.root / "bedrock" / name)
        log = _CloudWatchStream(region, "/aws/bedrock/modelcustomizationjobs", name)
        try:
            sources = {"train": job.training_data_config["s3Uri"]}
            validators = (job.validation_data_config or {}).get("validators") or []
            if validators:
                sources["validation"] = validators[0]["s3Uri"]
            raw = {channel: _bedrock_records(s3, uri, box.root / "raw" / channel) for channel, uri in sources.items()}
            generative = not all(_is_classification_prompt(r) for records in raw.values() for _, r in records)
            for channel, records in raw.items():
                _write_bedrock_channel(records, box.channel(channel), sources[channel], generative)
            channels = list(raw)
            hps = dict(hyperparameters)
            if generative:
                hps["task"] = "chat"
                hps.setdefault("max_length", "256")
                stand_in = os.environ.get(LOCAL_BEDROCK_LM_ENV, "").strip()
                if stand_in.startswith("s3://"):
                    download_prefix(s3, stand_in, box.channel("base_model"))
                    channels.append("base_model")
                if stand_in:
                    hps["base_model"] = stand_in
            else:
                hps.setdefault("max_length", "32")
            _fetch_code(s3, code_uri, "train.py", box.code)
            losses = _MetricCollector(
                [
                    {"Name": "trainingLoss", "Regex": r"name=train_loss value=([-+0-9.eE]+)"},
                    {"Name": "validationLoss", "Regex": r"name=validation_loss value=([-+0-9.eE]+)"},
                ]
            )
            code, tail = self._train(name, box, "train.py", channels, hps, log, losses.feed, None)
            final = {m["MetricName"]: m["Value"] for m in losses.final()}
            job.training_metrics = {"trainingLoss": final.get("trainingLoss", 0.0)}
            job.validation_metrics = [{"validationLoss": final.get("validationLoss", 0.0)}]
            if code != 0:
                job.failure_message = _failure_reason(box.output / "failure", tail, code)[:1024]
                job.status = "Failed"
                return
            prefix = job.output_data_config["s3Uri"].rstrip("/") + f"/{name}/"
            base_uri = _upload_base_model(s3, box, prefix + "base-model.tar.gz", log) if generative else None
            box.upload_model(s3, prefix + "model.tar.gz")
            on_done(prefix + "model.tar.gz", base_uri, generative)
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
        overrides: dict[str, str] | None = None,
        host: str | None = None,
    ) -> tuple[int, list[str]]:
        """Run a training entry point with SageMaker's environment contract inside ``box`` (``overrides``: the
        environment of one host of a multi-instance job; ``host`` prefixes its lines for the listeners)."""
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
        env.update(overrides or {})
        args = [self.settings.python, program]
        for k, v in hps.items():
            args += [f"--{k}", str(v)]
        return self._run(name, args, box.code, env, log, on_line, max_runtime, host)

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
        host: str | None = None,
    ) -> tuple[int, list[str]]:
        if self._stopped(name):
            return STOPPED_EXIT_CODE, []  # stopped before its entry point started: it never starts
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        with self._procs_lock:
            group = self._procs.setdefault(name, [])
            group[:] = [p for p in group if p.poll() is None]  # a retried or earlier run's processes are done
            group.append(proc)
            stopping = name in self._stop_messages
        if stopping:  # StopTrainingJob came between the check above and now: it found no process to stop
            self._terminate(name, self.settings.stop_grace_seconds)
        prefix = f"[{host}] " if host else ""
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
                listener(name, prefix + line)
        code = proc.wait()
        if timer:
            timer.cancel()
        return code, tail


def _kill_running(procs: list[subprocess.Popen[str]]) -> None:
    """SIGKILL the processes that have not exited yet."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()


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


def _bedrock_records(s3: Any, uri: str, dest: Path) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a Bedrock data file (``(line, record)``); a line that is not one names its line."""
    out: list[tuple[int, dict[str, Any]]] = []
    for path in download_prefix(s3, uri, dest):
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"{uri} line {line_no}: expected a JSON object")
            out.append((line_no, record))
    shutil.rmtree(dest, ignore_errors=True)
    return out


def _is_classification_prompt(record: dict[str, Any]) -> bool:
    """Whether a Bedrock training record asks fmops' classification prompt (``fmops.data.formats``)."""
    if isinstance(record.get("prompt"), str):
        return str(record["prompt"]).startswith(CLASSIFICATION_PROMPT_PREFIX)
    messages = record.get("messages")
    if isinstance(messages, list) and len(messages) >= 2 and isinstance(messages[-2], dict):
        return _text(messages[-2].get("content", "")).startswith(CLASSIFICATION_PROMPT_PREFIX)
    return False


def _write_bedrock_channel(records: list[tuple[int, dict[str, Any]]], dest: Path, uri: str, generative: bool) -> None:
    """The channel file of train.py: classification records (the completion, or the assistant's turn, is the
    label), or, for a generative job, the Bedrock lines as they are (train.py reads prompt/completion and both
    conversation shapes)."""
    with open(dest / "data.jsonl", "w", encoding="utf-8") as out:
        for line_no, record in records:
            converted = record if generative else _as_classification(record)
            if converted is None:
                raise ValueError(f"{uri} line {line_no}: expected prompt/completion or conversation fields")
            out.write(json.dumps(converted, ensure_ascii=False) + "\n")


def _upload_base_model(s3: Any, box: _TrainingBox, uri: str, log: _CloudWatchStream) -> str | None:
    """The generative job's starting point as a model artifact the serving code loads (the base model's files and a
    ``fmops_model.json`` of task ``chat``), so that "base model" invocations answer with exactly that model.
    None (logged) when the trained model does not say where its base model lies on this machine."""
    meta = json.loads((box.model / "fmops_model.json").read_text(encoding="utf-8"))
    location = Path(str((meta.get("base_model_source") or {}).get("location", "")))
    if not location.is_dir():
        log.write(f"fmops local executor: base model {meta.get('base_model')} is not a local folder: not served")
        return None
    folder = box.root / "base-model"
    shutil.copytree(location, folder, ignore=shutil.ignore_patterns("fmops_model.json", "labels.json", "adapter"))
    hps = meta.get("hyperparameters") or {}
    base_meta = {
        "task": "chat",
        "base_model": meta.get("base_model"),
        "hyperparameters": {k: hps[k] for k in ("max_length", "max_new_tokens") if k in hps},
    }
    (folder / "fmops_model.json").write_text(json.dumps(base_meta), encoding="utf-8")
    archive = make_tarball(folder, box.root / "base-model.tar.gz")
    bucket, key = split_s3_uri(uri)
    s3.upload_file(str(archive), bucket, key)
    return uri


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


class _FinalStatus:
    """``training_job_status`` of a job the executor runs: once Completed, Failed or Stopped it no longer changes (a
    late write, such as StopTrainingJob's ``Stopping`` after the job ended, is ignored, as SageMaker ignores a stop
    of an ended job). Kept in the instance ``__dict__``, where moto's DescribeTrainingJob reads it."""

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__.get("training_job_status")

    def __set__(self, obj: Any, value: Any) -> None:
        if obj.__dict__.get("training_job_status") in TERMINAL_STATUSES and value not in TERMINAL_STATUSES:
            return
        obj.__dict__["training_job_status"] = value


_FINAL_STATUS_CLASSES: dict[type, type] = {}
_FINAL_STATUS_LOCK = threading.Lock()


def _keep_final_status(job: Any) -> None:
    """Give ``job`` (a moto training job) a ``training_job_status`` that stays once terminal (``_FinalStatus``)."""
    cls = type(job)
    if "training_job_status" in vars(cls) and isinstance(vars(cls)["training_job_status"], _FinalStatus):
        return
    with _FINAL_STATUS_LOCK:
        guarded = _FINAL_STATUS_CLASSES.get(cls)
        if guarded is None:
            guarded = type(cls.__name__, (cls,), {"training_job_status": _FinalStatus()})
            _FINAL_STATUS_CLASSES[cls] = guarded
    job.__class__ = guarded


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
