"""SageMaker gap fillers: jobs that really run, endpoints that really serve.

- ``create_training_job``/``create_processing_job``: moto marks jobs Completed at once with fake
  artifacts; here the job starts InProgress and the local executor owns its state.
- ``create_endpoint``/``update_endpoint``: the endpoint is Creating/Updating while its model servers
  start, then InService (or Failed with the server's error).
- ``invoke_endpoint``: routed to the model server of a production variant chosen by the variants'
  current weights (or ``TargetVariant``), as SageMaker does.
- ``create_endpoint_config``: moto's instance-type whitelist predates ml.g5/g6/p5/inf2; any ``ml.*``
  type is accepted.
"""

from __future__ import annotations

import json
import random
import re
import threading
from typing import Any

from fmops_local import runtime

_rng = random.Random()


def _account_region(backend: Any) -> tuple[str, str]:
    return backend.account_id, backend.region_name


def _model_container(backend: Any, model_name: str) -> dict[str, Any]:
    model = backend.describe_model(model_name)
    container = model.primary_container or (model.containers[0] if model.containers else {})
    package_name = container.get("ModelPackageName")
    if package_name and not container.get("ModelDataUrl"):
        package = backend.describe_model_package(package_name)
        spec_container = (package.inference_specification or {}).get("Containers", [{}])[0]
        merged = dict(spec_container)
        merged.setdefault("Environment", {})
        merged["Environment"] = {**spec_container.get("Environment", {}), **container.get("Environment", {})}
        return merged
    return container


def _warm_endpoint(backend: Any, endpoint: Any) -> None:
    """Start the model server of every variant, then mark the endpoint InService or Failed."""
    try:
        config = backend.describe_endpoint_config(endpoint.endpoint_config_name)
        for variant in config["ProductionVariants"]:
            container = _model_container(backend, variant["ModelName"])
            if not container.get("ModelDataUrl"):
                raise ValueError(f"model {variant['ModelName']} has no ModelDataUrl")
            runtime.current().models.get(
                container["ModelDataUrl"], container.get("Environment", {}), backend.region_name
            )
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = None
    except Exception as exc:  # the endpoint's failure, visible in DescribeEndpoint
        endpoint.endpoint_status = "Failed"
        endpoint.failure_reason = f"{type(exc).__name__}: {exc}"[:1024]


def apply() -> None:
    from moto.sagemaker import models as sm
    from moto.sagemaker import responses as smr
    from moto.sagemakerruntime import responses as rtr

    backend_cls = sm.SageMakerModelBackend
    if getattr(backend_cls, "_fmops_patched", False):
        return
    backend_cls._fmops_patched = True

    def update_model_package(
        self: Any,
        model_package_arn: str,
        model_approval_status: str | None,
        approval_description: str | None,
        customer_metadata_properties: dict[str, str] | None,
        customer_metadata_properties_to_remove: list[str],
        additional_inference_specifications_to_add: list[Any] | None,
    ) -> str:
        # AWS merges CustomerMetadataProperties and leaves unspecified fields alone; moto replaces them.
        mapped = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
        package = self.model_packages.get(mapped)
        if package is None:
            raise sm.ValidationError(f"Model package {model_package_arn} not found")
        if model_approval_status:
            package.set_model_approval_status(model_approval_status)
        if approval_description is not None:
            package.approval_description = approval_description
        merged = dict(package.customer_metadata_properties or {})
        merged.update(customer_metadata_properties or {})
        for key in customer_metadata_properties_to_remove or []:
            merged.pop(key, None)
        package.customer_metadata_properties = merged
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
        package.modifications_done()
        return str(package.arn)

    backend_cls.update_model_package = update_model_package

    original_training = backend_cls.create_training_job

    def create_training_job(self: Any, training_job_name: str, **kwargs: Any) -> Any:
        if training_job_name in self.training_jobs:
            raise sm.ValidationError(message=f"Training job {training_job_name} already exists")
        metric_definitions = list((kwargs.get("algorithm_specification") or {}).get("MetricDefinitions", []))
        job = original_training(self, training_job_name=training_job_name, **kwargs)
        job.algorithm_specification["MetricDefinitions"] = metric_definitions
        job.final_metric_data_list = []
        job.training_job_status = "InProgress"
        job.secondary_status = "Starting"
        job.training_end_time = None
        job.failure_reason = None
        rt = runtime.current()
        rt.executor.submit(lambda: rt.executor.run_training_job(job, self.region_name), training_job_name)
        return job

    backend_cls.create_training_job = create_training_job

    original_processing = backend_cls.create_processing_job

    def create_processing_job(self: Any, processing_job_name: str, **kwargs: Any) -> Any:
        if processing_job_name in self.processing_jobs:
            raise sm.ValidationError(message=f"Processing job {processing_job_name} already exists")
        job = original_processing(self, processing_job_name=processing_job_name, **kwargs)
        job.processing_job_status = "InProgress"
        job.processing_end_time = None
        job.failure_reason = None
        rt = runtime.current()
        rt.executor.submit(lambda: rt.executor.run_processing_job(job, self.region_name), processing_job_name)
        return job

    backend_cls.create_processing_job = create_processing_job

    def stop_training_job(self: Any, training_job_name: str) -> None:
        job = self.training_jobs.get(training_job_name)
        if job is None:
            raise sm.ValidationError(message=f"Could not find training job '{training_job_name}'.")
        if runtime.current().executor.stop(training_job_name):
            job.training_job_status = "Stopping"

    backend_cls.stop_training_job = stop_training_job

    def _stop_training_job_response(self: Any) -> Any:
        self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
        return "{}"

    smr.SageMakerResponse.stop_training_job = _stop_training_job_response

    # Endpoint configs: accept every ml.* instance type.
    def validate_instance_type(self: Any, instance_type: str) -> None:
        if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", instance_type or ""):
            raise sm.ValidationError(message=f"Value '{instance_type}' at 'instanceType' is not an ml.* type")

    for cls in (sm.FakeEndpointConfig,):
        if hasattr(cls, "validate_instance_type"):
            cls.validate_instance_type = validate_instance_type

    original_create_endpoint = backend_cls.create_endpoint

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        if endpoint_name in self.endpoints:
            raise sm.ValidationError(message=f'Cannot create already existing endpoint "{endpoint_name}".')
        endpoint = original_create_endpoint(self, endpoint_name, endpoint_config_name, tags)
        endpoint.endpoint_status = "Creating"
        threading.Thread(target=_warm_endpoint, args=(self, endpoint), daemon=True).start()
        return endpoint

    backend_cls.create_endpoint = create_endpoint

    def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise sm.ValidationError(message=f'Could not find endpoint "{endpoint_name}".')
        config = self.describe_endpoint_config(endpoint_config_name)
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.endpoint_status = "Updating"
        threading.Thread(target=_warm_endpoint, args=(self, endpoint), daemon=True).start()
        return str(endpoint.arn)

    backend_cls.update_endpoint = update_endpoint

    def _update_endpoint_response(self: Any) -> Any:
        arn = self.sagemaker_backend.update_endpoint(
            self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        )
        return json.dumps({"EndpointArn": arn})

    smr.SageMakerResponse.update_endpoint = _update_endpoint_response

    def invoke_endpoint(self: Any) -> Any:
        endpoint_name = self._get_param("EndpointName") or self.path.split("/")[2]
        backend = sm.sagemaker_backends[self.current_account][self.region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            return _error(
                400,
                "ValidationError",
                f"Endpoint {endpoint_name} of account {self.current_account} not found.",
            )
        if endpoint.endpoint_status not in ("InService", "Updating"):
            return _error(400, "ValidationError", f"Endpoint {endpoint_name} is {endpoint.endpoint_status}.")
        variants = endpoint.production_variants
        target = self.headers.get("X-Amzn-SageMaker-Target-Variant")
        if target:
            chosen = next((v for v in variants if v["VariantName"] == target), None)
            if chosen is None:
                return _error(400, "ValidationError", f"Variant {target} not found on endpoint {endpoint_name}.")
        else:
            weights = [float(v.get("CurrentWeight", 1.0) or 0.0) for v in variants]
            if sum(weights) <= 0:
                return _error(400, "ValidationError", f"Endpoint {endpoint_name} has no variant with weight > 0.")
            chosen = _rng.choices(variants, weights=weights, k=1)[0]
        config = backend.describe_endpoint_config(endpoint.endpoint_config_name)
        variant_cfg = next(v for v in config["ProductionVariants"] if v["VariantName"] == chosen["VariantName"])
        container = _model_container(backend, variant_cfg["ModelName"])
        pool = runtime.current().models
        try:
            server = pool.get(container["ModelDataUrl"], container.get("Environment", {}), backend.region_name)
            status, body, content_type = pool.invoke(
                server,
                self.body if isinstance(self.body, bytes) else (self.body or "").encode(),
                self.headers.get("Content-Type", "application/json"),
                self.headers.get("Accept", "application/json"),
            )
        except Exception as exc:
            return _error(424, "ModelError", f"Received server error from model: {exc}")
        if status != 200:
            text = body.decode(errors="replace")
            return _error(424, "ModelError", f'Received client error ({status}) from model with message "{text}".')
        headers = {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": chosen["VariantName"]}
        return 200, headers, body

    rtr.SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    # moto takes the status from the "status" header of a handler's response.
    return (
        status,
        {"x-amzn-ErrorType": code, "Content-Type": "application/json", "status": str(status)},
        json.dumps({"__type": code, "message": message, "Message": message}),
    )
