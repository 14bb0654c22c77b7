"""Bedrock gap fillers: customization jobs that really train, provisioned throughput, invoke_model.

Locally there is no foundation model to fine-tune, so a customization job runs the project's training
entry point through the local executor: classification prompts train the bundled encoder (predicting the
completion from the prompt), any other data (summaries, answers, chat replies) trains a small causal LM
(``FMOPS_LOCAL_BEDROCK_LM``, default SmolLM2-135M-Instruct). The custom model it produces is served by a local
model server; the foundation model it started from is served as that training run's exact starting point
(``training/base_inference.py`` for the encoder, the untrained causal LM for generative jobs). Invocations
accept the request shape of each family (``fmops.bedrock_models``) and answer in it: the label of a
classifier, the text a causal LM generates (greedy, up to the request's token limit) for the conversation.
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

# custom model ARN -> model.tar.gz; foundation model id -> {"classification"|"generative": artifact started from it}
CUSTOM_ARTIFACTS: dict[str, str] = {}
BASE_ARTIFACTS: dict[str, dict[str, str]] = {}
# artifacts (custom or base) of causal LMs: invoked with the conversation, answering generated text
GENERATIVE_ARTIFACTS: set[str] = set()
# provisioned throughput records by ARN (names resolve through _by_name)
PROVISIONED: dict[str, dict[str, Any]] = {}
CLASSIFICATION_PROMPT_PREFIX = "Classify the text into one of:"
DEFAULT_MAX_NEW_TOKENS = 64
MAX_NEW_TOKENS = 1024  # what the local serving code accepts

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
    GENERATIVE_ARTIFACTS.clear()
    PROVISIONED.clear()


def _local_hyperparameters(bedrock_hps: dict[str, str]) -> dict[str, str]:
    """Bedrock's hyperparameter names → train.py's; names with no local meaning are dropped (the executor adds
    the local ones: ``max_length``, and ``task``/``base_model`` for a generative job)."""
    return {HP_NAMES[k]: str(v) for k, v in (bedrock_hps or {}).items() if k in HP_NAMES}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _resolve_model(model_id: str, prompt: str | None = None) -> tuple[str, str | None] | None:
    """(artifact URI, handler program) for a provisioned throughput, custom model or foundation model.

    A foundation model that started both a classification and a generative customization here answers a
    classification prompt with the encoder's starting point and anything else with the causal LM's.
    """
    model_id = unquote(model_id)
    record = PROVISIONED.get(model_id) or next(
        (r for r in PROVISIONED.values() if r["provisionedModelName"] == model_id), None
    )
    if record:
        model_id = record["modelArn"]
    if model_id in CUSTOM_ARTIFACTS:
        return CUSTOM_ARTIFACTS[model_id], None
    kinds = BASE_ARTIFACTS.get(model_id.split("foundation-model/")[-1], {})
    wanted = "classification" if prompt is None or prompt.startswith(CLASSIFICATION_PROMPT_PREFIX) else "generative"
    kind = wanted if wanted in kinds else next(iter(kinds), None)
    if kind == "classification":
        return kinds[kind], "base_inference.py"
    if kind == "generative":
        return kinds[kind], None
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


_LLAMA_TURN = re.compile(r"<\|start_header_id\|>(system|user|assistant)<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.S)
_TITAN_TURN = re.compile(r"^(User|Bot): ", re.M)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def _input_messages(payload: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation of a request, for a causal LM: ``[{"role", "content"}]`` (system first, if any).

    Nova and Claude send messages; Llama's chat template is read back into its turns; a Titan ``inputText`` is one
    user turn (a ``User:``/``Bot:`` transcript, ``fmops.bedrock_models.transcript``, is read back into turns)."""
    messages = payload.get("messages")
    if isinstance(messages, list) and messages:
        out = []
        system = payload.get("system")
        if system:
            out.append({"role": "system", "content": _text_of(system)})
        for message in messages:
            if isinstance(message, dict):
                out.append({"role": str(message.get("role", "user")), "content": _text_of(message.get("content"))})
        return out
    text = payload.get("prompt") if isinstance(payload.get("prompt"), str) else payload.get("inputText")
    if not isinstance(text, str):
        if isinstance(payload.get("inputs"), str):
            return [{"role": "user", "content": str(payload["inputs"])}]
        raise ValueError("body has no inputText, prompt or messages")
    turns = _LLAMA_TURN.findall(text)
    if turns:
        return [{"role": role, "content": content} for role, content in turns]
    parts = _TITAN_TURN.split(text)
    if len(parts) > 2 and text.rstrip().endswith("Bot:"):
        head, rest = parts[0].strip(), parts[1:]
        out = [{"role": "system", "content": head}] if head else []
        for speaker, content in zip(rest[::2], rest[1::2], strict=True):
            if content.strip():
                out.append({"role": "user" if speaker == "User" else "assistant", "content": content.strip()})
        return out
    return [{"role": "user", "content": text}]


def _max_new_tokens(payload: dict[str, Any]) -> int:
    """The request's generation limit in the family's field (the local server's default without one)."""
    config = payload.get("inferenceConfig") or payload.get("textGenerationConfig") or {}
    for value in (
        config.get("maxTokens") if isinstance(config, dict) else None,
        config.get("maxTokenCount") if isinstance(config, dict) else None,
        payload.get("max_tokens"),
        payload.get("max_gen_len"),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return min(value, MAX_NEW_TOKENS)
    return DEFAULT_MAX_NEW_TOKENS


def _response(payload: dict[str, Any], text: str, label: str) -> dict[str, Any]:
    """The response in the shape of the request's model family (see ``fmops.bedrock_models``): ``label`` is the
    answer (a class label, or generated text), ``text`` the input (for the token counts)."""
    tokens = len(text.split())
    out = max(1, len(label.split()))
    if "inferenceConfig" in payload:  # Nova
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": label}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": tokens, "outputTokens": out, "totalTokens": tokens + out},
        }
    if "anthropic_version" in payload:  # Claude
        return {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": label}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": tokens, "output_tokens": out},
        }
    if "max_gen_len" in payload:  # Llama
        return {
            "generation": label,
            "prompt_token_count": tokens,
            "generation_token_count": out,
            "stop_reason": "stop",
        }
    return {
        "inputTextTokenCount": tokens,
        "results": [{"tokenCount": out, "outputText": label, "completionReason": "FINISH"}],
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

        def done(uri: str, base_uri: str | None, generative: bool) -> None:
            CUSTOM_ARTIFACTS[job.output_model_arn] = uri
            kinds = BASE_ARTIFACTS.setdefault(job.base_model_identifier.split("foundation-model/")[-1], {})
            if generative:
                GENERATIVE_ARTIFACTS.add(uri)
                if base_uri:
                    GENERATIVE_ARTIFACTS.add(base_uri)
                    kinds["generative"] = base_uri
            else:
                kinds["classification"] = uri  # served by base_inference.py: the encoder's starting point

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
        try:
            body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
            payload = json.loads(body or b"{}")
            text = _input_text(payload)
        except ValueError as exc:
            return _error(400, "ValidationException", f"Malformed input request: {exc}")
        resolved = _resolve_model(model_id, text)
        if resolved is None:
            return _error(400, "ValidationException", f"The provided model identifier is invalid: {model_id}")
        generative = resolved[0] in GENERATIVE_ARTIFACTS
        if generative:
            request: dict[str, Any] = {
                "inputs": [_input_messages(payload)],
                "parameters": {"max_new_tokens": _max_new_tokens(payload)},
            }
        else:
            request = {"inputs": [text]}
        pool = runtime.current().models
        try:
            server = pool.get(resolved[0], {}, self.region, resolved[1])
            status, raw, _ = pool.invoke(server, json.dumps(request).encode(), "application/json", "application/json")
        except Exception as exc:
            return _error(424, "ModelErrorException", f"model error: {exc}")
        if status != 200:
            return _error(424, "ModelErrorException", raw.decode(errors="replace"))
        prediction = json.loads(raw)["predictions"][0]
        answer = str(prediction["generated_text"] if generative else prediction["label"])
        return 200, {"Content-Type": "application/json"}, json.dumps(_response(payload, text, answer))

    rr.BedrockRuntimeResponse.invoke_model = invoke_model
