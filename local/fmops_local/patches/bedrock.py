"""Bedrock gap fillers: customization jobs that really train, provisioned throughput, invoke_model.

Locally there is no foundation model to fine-tune, so a customization job runs the project's training
entry point (the bundled encoder, predicting the completion from the prompt) through the local executor.
The custom model it produces is served by a local model server; the foundation model it started from is
served as that training run's exact starting point (``training/base_inference.py``). Invocations accept
the Titan text request shape and answer in it (``results[0].outputText``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from typing import Any
from urllib.parse import unquote

from fmops_local import runtime
from fmops_local.deploy import TRAINING_CODE_KEY

# custom model ARN -> model.tar.gz; foundation model id -> a customization artifact started from it
CUSTOM_ARTIFACTS: dict[str, str] = {}
BASE_ARTIFACTS: dict[str, str] = {}
# provisioned throughput records by ARN (names resolve through _by_name)
PROVISIONED: dict[str, dict[str, Any]] = {}

HP_NAMES = {
    "epochCount": "epochs",
    "learningRate": "learning_rate",
    "batchSize": "batch_size",
    "learningRateWarmupSteps": "warmup_steps",
}


def reset() -> None:
    """Forget local Bedrock state (a new local AWS starts empty)."""
    CUSTOM_ARTIFACTS.clear()
    BASE_ARTIFACTS.clear()
    PROVISIONED.clear()


def _local_hyperparameters(bedrock_hps: dict[str, str]) -> dict[str, str]:
    """Bedrock's hyperparameter names → train.py's; names with no local meaning are dropped."""
    out = {HP_NAMES[k]: str(v) for k, v in (bedrock_hps or {}).items() if k in HP_NAMES}
    out.setdefault("max_length", "32")
    return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _resolve_model(model_id: str) -> tuple[str, str | None] | None:
    """(artifact URI, handler program) for a provisioned throughput, custom model or foundation model."""
    model_id = unquote(model_id)
    record = PROVISIONED.get(model_id) or next(
        (r for r in PROVISIONED.values() if r["provisionedModelName"] == model_id), None
    )
    if record:
        model_id = record["modelArn"]
    if model_id in CUSTOM_ARTIFACTS:
        return CUSTOM_ARTIFACTS[model_id], None
    base = model_id.split("foundation-model/")[-1]
    if base in BASE_ARTIFACTS:
        return BASE_ARTIFACTS[base], "base_inference.py"
    return None


_LLAMA_USER = re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.S)


def _input_text(payload: dict[str, Any]) -> str:
    for key in ("inputText", "prompt", "inputs"):
        if isinstance(payload.get(key), str):
            text = str(payload[key])
            user = _LLAMA_USER.search(text)  # a Llama 3 chat template: the model sees the user's turn
            return user.group(1) if user else text
    messages = payload.get("messages")
    if isinstance(messages, list) and messages:
        content = messages[-1].get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list) and content and isinstance(content[0], dict):
            return str(content[0].get("text", ""))
    raise ValueError("body has no inputText, prompt or messages")


def _response(payload: dict[str, Any], text: str, label: str) -> dict[str, Any]:
    """The response in the shape of the request's model family (see ``fmops.bedrock_models``)."""
    tokens = len(text.split())
    if "inferenceConfig" in payload:  # Nova
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": label}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": tokens, "outputTokens": 1, "totalTokens": tokens + 1},
        }
    if "anthropic_version" in payload:  # Claude
        return {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": label}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": tokens, "output_tokens": 1},
        }
    if "max_gen_len" in payload:  # Llama
        return {"generation": label, "prompt_token_count": tokens, "generation_token_count": 1, "stop_reason": "stop"}
    return {
        "inputTextTokenCount": tokens,
        "results": [{"tokenCount": 1, "outputText": label, "completionReason": "FINISH"}],
    }


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    return (
        status,
        {"x-amzn-ErrorType": code, "Content-Type": "application/json", "status": str(status)},
        json.dumps({"message": message}),
    )


def apply() -> None:
    from moto.bedrock import models as bm
    from moto.bedrock import responses as br
    from moto.bedrockruntime import responses as rr

    backend_cls = bm.BedrockBackend
    if getattr(backend_cls, "_fmops_patched", False):
        return
    backend_cls._fmops_patched = True

    original_create = backend_cls.create_model_customization_job

    def create_model_customization_job(self: Any, **kwargs: Any) -> Any:
        result = original_create(self, **kwargs)
        job = self.model_customization_jobs[kwargs["job_name"]]
        job.status = "InProgress"
        job.failure_message = None
        job.end_time = None
        bucket = job.output_data_config["s3Uri"].split("/")[2]
        code_uri = f"s3://{bucket}/{TRAINING_CODE_KEY}"
        hps = _local_hyperparameters(job.hyper_parameters)

        def done(uri: str) -> None:
            CUSTOM_ARTIFACTS[job.output_model_arn] = uri
            BASE_ARTIFACTS[job.base_model_identifier.split("foundation-model/")[-1]] = uri

        rt = runtime.current()
        rt.executor.submit(
            lambda: rt.executor.run_bedrock_job(job, self.region_name, code_uri, hps, done), job.job_name
        )
        return result

    backend_cls.create_model_customization_job = create_model_customization_job

    original_get = backend_cls.get_model_customization_job

    def get_model_customization_job(self: Any, job_identifier: str) -> Any:
        ident = unquote(job_identifier)
        if ident.startswith("arn:"):
            ident = ident.split("model-customization-job/")[-1]
        return original_get(self, ident)

    backend_cls.get_model_customization_job = get_model_customization_job

    def create_provisioned_model_throughput(self: Any) -> Any:
        params = json.loads(self.body)
        name = params["provisionedModelName"]
        if any(r["provisionedModelName"] == name for r in PROVISIONED.values()):
            return _error(400, "ResourceInUseException", f"Provisioned model {name} already exists")
        model_arn = params["modelId"]
        if _resolve_model(model_arn) is None:
            return _error(404, "ResourceNotFoundException", f"Model {model_arn} not found")
        arn = f"arn:aws:bedrock:{self.region}:{self.current_account}:provisioned-model/{uuid.uuid4().hex[:12]}"
        record = {
            "provisionedModelArn": arn,
            "provisionedModelName": name,
            "modelArn": model_arn,
            "desiredModelArn": model_arn,
            "foundationModelArn": model_arn,
            "modelUnits": int(params.get("modelUnits", 1)),
            "desiredModelUnits": int(params.get("modelUnits", 1)),
            "status": "Creating",
            "creationTime": _now(),
            "lastModifiedTime": _now(),
        }
        PROVISIONED[arn] = record
        region = self.region

        def warm() -> None:
            resolved = _resolve_model(model_arn)
            try:
                assert resolved is not None
                runtime.current().models.get(resolved[0], {}, region, resolved[1])
                record["status"] = "InService"
            except Exception as exc:
                record["status"] = "Failed"
                record["failureMessage"] = f"{type(exc).__name__}: {exc}"
            record["lastModifiedTime"] = _now()

        threading.Thread(target=warm, daemon=True).start()
        return 201, {"status": "201"}, json.dumps({"provisionedModelArn": arn})

    def get_provisioned_model_throughput(self: Any) -> Any:
        ident = unquote(self.path.split("/provisioned-model-throughput/")[-1])
        record = PROVISIONED.get(ident) or next(
            (r for r in PROVISIONED.values() if r["provisionedModelName"] == ident), None
        )
        if record is None:
            return _error(404, "ResourceNotFoundException", f"Provisioned model {ident} not found")
        return json.dumps(record)

    def delete_provisioned_model_throughput(self: Any) -> Any:
        ident = unquote(self.path.split("/provisioned-model-throughput/")[-1])
        for arn, record in list(PROVISIONED.items()):
            if ident in (arn, record["provisionedModelName"]):
                del PROVISIONED[arn]
                return json.dumps({})
        return _error(404, "ResourceNotFoundException", f"Provisioned model {ident} not found")

    br.BedrockResponse.create_provisioned_model_throughput = create_provisioned_model_throughput
    br.BedrockResponse.get_provisioned_model_throughput = get_provisioned_model_throughput
    br.BedrockResponse.delete_provisioned_model_throughput = delete_provisioned_model_throughput

    def invoke_model(self: Any) -> Any:
        model_id = unquote(self.path.split("/model/")[-1].rsplit("/invoke", 1)[0])
        resolved = _resolve_model(model_id)
        if resolved is None:
            return _error(400, "ValidationException", f"The provided model identifier is invalid: {model_id}")
        try:
            body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
            payload = json.loads(body or b"{}")
            text = _input_text(payload)
        except ValueError as exc:
            return _error(400, "ValidationException", f"Malformed input request: {exc}")
        pool = runtime.current().models
        try:
            server = pool.get(resolved[0], {}, self.region, resolved[1])
            status, raw, _ = pool.invoke(
                server, json.dumps({"inputs": [text]}).encode(), "application/json", "application/json"
            )
        except Exception as exc:
            return _error(424, "ModelErrorException", f"model error: {exc}")
        if status != 200:
            return _error(424, "ModelErrorException", raw.decode(errors="replace"))
        label = json.loads(raw)["predictions"][0]["label"]
        return 200, {"Content-Type": "application/json"}, json.dumps(_response(payload, text, label))

    rr.BedrockRuntimeResponse.invoke_model = invoke_model
