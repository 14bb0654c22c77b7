"""``LocalAws``: the embedded default. moto in this process, the gap fillers, the stack deployed.

In-process (tests, ``fmops demo``): boto3 calls in this process are served by moto directly.
Server mode (``fmops local up``): the same, plus moto's HTTP server on 127.0.0.1 for other processes
(``AWS_ENDPOINT_URL=http://127.0.0.1:<port>``) and the local API front.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from fmops_local import patches, runtime
from fmops_local.deploy import StackInfo, deploy_stack
from fmops_local.patches.lambda_inprocess import environment_lock

LOCAL_ACCOUNT = "123456789012"
# The local AWS's only credentials (moto's mock credentials); the API front checks signatures against them.
LOCAL_ACCESS_KEY = "AKIDLOCALFMOPS0000000"
LOCAL_SECRET_KEY = "local-fmops-secret-key-not-a-real-credential"


@dataclass
class LocalAws:
    region: str = "us-east-1"
    stack_name: str = "fmops-local"
    server_port: int | None = None
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fmops-local-")))
    stack: StackInfo | None = None
    _mock: Any = None
    _server: Any = None
    api: Any = None
    _saved_env: dict[str, str] = field(default_factory=dict)

    def start(self) -> LocalAws:
        from moto import mock_aws

        self._saved_env = os.environ.copy()
        # deploy.SKIPPED lists what moto's CloudFormation cannot create, and what stands in for it.
        warnings.filterwarnings("ignore", message=r"Tried to parse .* not supported", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"No application metrics to publish", category=UserWarning)
        with environment_lock():
            os.environ.update(
                {
                    "AWS_DEFAULT_REGION": self.region,
                    "AWS_REGION": self.region,
                    "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
                }
            )
            for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
                os.environ.pop(var, None)
        self._mock = mock_aws(
            config={
                "stepfunctions": {"execute_state_machine": True},
                "core": {"mock_credentials": False, "reset_boto3_session": True},
            }
        )
        self._mock.start()
        # moto's interpreter logs every caught task failure with a full state dump; the execution
        # history already holds the error and cause.
        logging.getLogger("moto").setLevel(logging.ERROR)  # deploy.SKIPPED says what is skipped, and why
        logging.getLogger("moto.stepfunctions").setLevel(
            logging.CRITICAL if not os.environ.get("FMOPS_DEBUG_SFN") else logging.DEBUG
        )
        patches.apply_all()
        patches.bedrock.reset()
        patches.lambda_inprocess.reset()
        runtime.replace(runtime.LocalRuntime(root=self.root))
        if self.server_port is not None:
            from moto.server import ThreadedMotoServer

            os.environ["MOTO_PORT"] = str(self.server_port)
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.server_port, verbose=False)
            self._server.start()
        return self

    def deploy(self, parameters: dict[str, str] | None = None) -> StackInfo:
        params = {"StageName": "dev"}
        params.update(parameters or {})
        self.stack = deploy_stack(self.stack_name, self.region, params)
        return self.stack

    def start_api(self, port: int = 0) -> Any:
        """Start the local API front for the stack's REST routes; returns it (``.url``)."""
        import json

        from fmops_local.api_front import ApiFront

        if self.stack is None:
            raise RuntimeError("deploy the stack before starting its API")
        lam = self.client("lambda")

        def invoke(function_name: str, event: dict[str, Any]) -> dict[str, Any]:
            resp = lam.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
            payload = json.loads(resp["Payload"].read() or b"{}")
            if resp.get("FunctionError"):
                return {"statusCode": 502, "body": json.dumps({"message": "Internal server error"})}
            return dict(payload)

        self.api = ApiFront(
            invoke=invoke,
            function_names=self.stack.resources,
            secrets={LOCAL_ACCESS_KEY: LOCAL_SECRET_KEY},
            identities={LOCAL_ACCESS_KEY: f"arn:aws:iam::{LOCAL_ACCOUNT}:user/local-operator"},
            region=self.region,
            account=LOCAL_ACCOUNT,
            stage="dev",
            port=port,
        ).start()
        # On AWS the functions learn the API's URL from the template; locally it is the front's.
        for physical in self.stack.of_type("AWS::Lambda::Function").values():
            env = lam.get_function_configuration(FunctionName=physical).get("Environment", {})
            variables = env.get("Variables", {})
            if "API_URL" in variables:
                variables["API_URL"] = self.api.url
                lam.update_function_configuration(FunctionName=physical, Environment={"Variables": variables})
        return self.api

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]

    @property
    def executor(self) -> Any:
        return runtime.current().executor

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
            self.api = None
        runtime.replace(None)
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        with environment_lock():  # no in-process handler is between its own set and restore
            os.environ.clear()
            os.environ.update(self._saved_env)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
