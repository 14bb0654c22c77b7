"""Endpoints serve through a model server chosen by variant weight; EventBridge reaches Lambda."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections import Counter

import pytest

from .conftest import BUCKET, create_function, role, tarball

# A minimal server speaking the SageMaker serving contract: answers with the model file's content.
SERVE = """
import argparse, json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
p = argparse.ArgumentParser(); p.add_argument("--model-dir"); p.add_argument("--port", type=int)
p.add_argument("--program")
a = p.parse_args()
name = open(os.path.join(a.model_dir, "name.txt")).read()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out = json.dumps({"model": name, "echo": json.loads(body)}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(("127.0.0.1", a.port), H)
print(f"fmops-serve ready port={s.server_address[1]}", flush=True)
s.serve_forever()
"""


def _model(aws, name: str) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = name.encode()
        info = tarfile.TarInfo("name.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=buf.getvalue())
    aws.client("sagemaker").create_model(
        ModelName=name,
        ExecutionRoleArn=role(aws),
        PrimaryContainer={
            "Image": "local",
            "ModelDataUrl": f"s3://{BUCKET}/models/{name}/model.tar.gz",
            "Environment": {
                "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/code/serve.tar.gz",
                "SAGEMAKER_PROGRAM": "inference.py",
            },
        },
    )
    return name


def _wait_in_service(sm, name: str) -> dict:
    for _ in range(300):
        desc = sm.describe_endpoint(EndpointName=name)
        if desc["EndpointStatus"] not in ("Creating", "Updating"):
            return desc
        time.sleep(0.1)
    raise TimeoutError(name)


@pytest.fixture
def endpoint(aws):
    aws.client("s3").put_object(Bucket=BUCKET, Key="code/serve.tar.gz", Body=tarball({"serve.py": SERVE}))
    sm = aws.client("sagemaker")
    _model(aws, "champion")
    _model(aws, "challenger")
    sm.create_endpoint_config(
        EndpointConfigName="ab",
        ProductionVariants=[
            {
                "VariantName": "A",
                "ModelName": "champion",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g5.xlarge",
                "InitialVariantWeight": 3.0,
            },
            {
                "VariantName": "B",
                "ModelName": "challenger",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g5.xlarge",
                "InitialVariantWeight": 1.0,
            },
        ],
    )
    sm.create_endpoint(EndpointName="ab-endpoint", EndpointConfigName="ab")
    assert sm.describe_endpoint(EndpointName="ab-endpoint")["EndpointStatus"] == "Creating"
    assert _wait_in_service(sm, "ab-endpoint")["EndpointStatus"] == "InService"
    return "ab-endpoint"


def test_invoke_reaches_model_server_and_honours_weights(aws, endpoint):
    rt, sm = aws.client("sagemaker-runtime"), aws.client("sagemaker")
    seen = Counter()
    for i in range(80):
        resp = rt.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=json.dumps({"i": i}))
        body = json.loads(resp["Body"].read())
        assert body["echo"] == {"i": i}
        assert body["model"] == {"A": "champion", "B": "challenger"}[resp["InvokedProductionVariant"]]
        seen[resp["InvokedProductionVariant"]] += 1
    # 3:1 weights: with 80 draws, P(B outside 5..35) is far below 1e-6.
    assert 5 <= seen["B"] <= 35 and seen["A"] > seen["B"]

    sm.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": "A", "DesiredWeight": 0.0},
            {"VariantName": "B", "DesiredWeight": 1.0},
        ],
    )
    variants = {
        rt.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json")[
            "InvokedProductionVariant"
        ]
        for _ in range(10)
    }
    assert variants == {"B"}

    targeted = rt.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json", TargetVariant="A")
    assert targeted["InvokedProductionVariant"] == "A"


def test_invoke_unknown_endpoint_is_a_validation_error(aws):
    rt = aws.client("sagemaker-runtime")
    with pytest.raises(rt.exceptions.ValidationError, match="not found"):
        rt.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType="application/json")


def test_endpoint_with_missing_artifact_fails_with_reason(aws):
    sm = aws.client("sagemaker")
    sm.create_model(
        ModelName="broken",
        ExecutionRoleArn=role(aws),
        PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{BUCKET}/missing/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="broken",
        ProductionVariants=[
            {"VariantName": "A", "ModelName": "broken", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName="broken", EndpointConfigName="broken")
    desc = _wait_in_service(sm, "broken")
    assert desc["EndpointStatus"] == "Failed"
    assert "no object" in desc["FailureReason"]


def test_s3_upload_reaches_lambda_through_eventbridge(aws):
    create_function(
        aws,
        "sink",
        """
import json, os
def lambda_handler(event, context):
    import boto3
    boto3.client("s3").put_object(Bucket=os.environ["B"], Key="seen/" + event["detail"]["object"]["key"],
                                  Body=json.dumps(event).encode())
    return {}
""",
        {"B": BUCKET},
    )
    s3, events = aws.client("s3"), aws.client("events")
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    events.put_rule(
        Name="uploads",
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [BUCKET]}, "object": {"key": [{"prefix": "in/"}]}},
            }
        ),
    )
    fn = aws.client("lambda").get_function(FunctionName="sink")["Configuration"]["FunctionArn"]
    events.put_targets(Rule="uploads", Targets=[{"Id": "sink", "Arn": fn}])

    version = s3.put_object(Bucket=BUCKET, Key="in/data.jsonl", Body=b"{}")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="other/ignored.jsonl", Body=b"{}")

    for _ in range(100):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="seen/").get("Contents", [])]
        if keys:
            break
        time.sleep(0.05)
    assert keys == ["seen/in/data.jsonl"]
    event = json.loads(s3.get_object(Bucket=BUCKET, Key="seen/in/data.jsonl")["Body"].read())
    assert event["detail"]["object"]["version-id"] == version


def test_local_bedrock_answers_in_the_shape_of_the_request() -> None:
    from fmops.bedrock_models import generated_text, invocation_body
    from fmops_local.patches.bedrock import _input_text, _response

    for model in (
        "amazon.titan-text-lite-v1",
        "amazon.nova-micro-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "meta.llama3-1-8b-instruct-v1:0",
    ):
        body = invocation_body(model, "Classify the text into one of: a, b.\nText: hi\nLabel:")
        assert _input_text(body) == "Classify the text into one of: a, b.\nText: hi\nLabel:", model
        assert generated_text(_response(body, "x y", "b")) == "b", model
