"""Deploy ``template.yaml`` into the local AWS, the way ``sam deploy`` does on AWS.

1. Package: each function's ``CodeUri`` and the layer's ``ContentUri`` are zipped and uploaded to a
   deployment bucket (``sam deploy --resolve-s3`` does the same); a state machine's ``DefinitionUri``
   is inlined as ``Definition`` (its ``DefinitionSubstitutions`` are kept and applied at create time).
2. Transform: the SAM translator (the same library ``sam`` uses) expands the Serverless resources.
3. Create: moto's CloudFormation creates the stack; the gap fillers in ``fmops_local.patches`` fix the
   resource handlers it gets wrong. Resource types moto cannot create are listed in ``SKIPPED`` with
   the local stand-in that replaces them.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_BUCKET = "fmops-local-deployments"
TRAINING_CODE_KEY = "code/training/sourcedir.tar.gz"

# What moto's CloudFormation cannot create, and what stands in for it locally.
SKIPPED = {
    "AWS::ApiGateway::RestApi": "fmops_local.api_front serves the same routes with the same handler",
    "AWS::ApiGateway::Deployment": "not needed by the local API front",
    "AWS::ApiGateway::Stage": "not needed by the local API front",
    "AWS::SageMaker::ModelPackageGroup": "groups are created through the API by the register step",
}


class TemplateError(Exception):
    """The template cannot be deployed locally."""


@dataclass(frozen=True)
class StackInfo:
    name: str
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    types: dict[str, str]  # logical id -> resource type

    def of_type(self, resource_type: str) -> dict[str, str]:
        return {lid: pid for lid, pid in self.resources.items() if self.types.get(lid) == resource_type}

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise TemplateError(f"stack output {key!r} missing; have {sorted(self.outputs)}") from None


class _AnyManagedPolicy(dict[str, str]):
    """SAM's managed-policy map, answered offline: every AWS managed policy name maps to its ARN."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __getitem__(self, key: str) -> str:
        return f"arn:aws:iam::aws:policy/{key}"


class _OfflinePolicyLoader:
    def load(self) -> dict[str, str]:
        return _AnyManagedPolicy()


def load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import decode_str

    template, matches = decode_str(path.read_text())
    if matches or template is None:
        raise TemplateError(f"{path}: " + "; ".join(str(m) for m in matches or []))
    return json.loads(json.dumps(template, default=str))


def _zip_dir(src: Path, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, prefix + path.relative_to(src).as_posix())
    return buf.getvalue()


def training_code_tarball(src: Path | None = None) -> bytes:
    """``sourcedir.tar.gz`` of ``training/``, as the SageMaker containers expect it."""
    src = src or REPO_ROOT / "training"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(src.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=path.relative_to(src).as_posix())
    return buf.getvalue()


def package(template: dict[str, Any], s3: Any, base: Path = REPO_ROOT) -> dict[str, Any]:
    """Upload local code and inline local definitions; returns the packaged template."""
    try:
        s3.create_bucket(Bucket=DEPLOY_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    out = json.loads(json.dumps(template))
    for logical_id, res in out.get("Resources", {}).items():
        props = res.get("Properties", {})
        kind = res.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            key = f"{logical_id}.zip"
            s3.put_object(Bucket=DEPLOY_BUCKET, Key=key, Body=_zip_dir(base / props["CodeUri"]))
            props["CodeUri"] = {"Bucket": DEPLOY_BUCKET, "Key": key}
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            key = f"{logical_id}.zip"
            s3.put_object(Bucket=DEPLOY_BUCKET, Key=key, Body=_zip_dir(base / props["ContentUri"], "python/"))
            props["ContentUri"] = {"Bucket": DEPLOY_BUCKET, "Key": key}
        elif kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["Definition"] = json.loads((base / props.pop("DefinitionUri")).read_text())
    return out


def transform(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform as sam_transform

    transformed: dict[str, Any] = sam_transform(template, parameters, _OfflinePolicyLoader())
    for res in transformed.get("Resources", {}).values():
        if res.get("Type") == "AWS::StepFunctions::StateMachine":
            # moto reads DefinitionString as a plain string: render SAM's Fn::Join of the inline JSON.
            ds = res["Properties"].get("DefinitionString")
            if isinstance(ds, dict) and "Fn::Join" in ds:
                sep, parts = ds["Fn::Join"]
                if all(isinstance(p, str) for p in parts):
                    res["Properties"]["DefinitionString"] = sep.join(parts)
    return transformed


def drop_unsupported(template: dict[str, Any]) -> dict[str, Any]:
    """Remove the ``SKIPPED`` resource types; references to them become ``local-<LogicalId>`` strings."""
    resources = template.get("Resources", {})
    dropped = {lid for lid, res in resources.items() if res.get("Type") in SKIPPED}
    if not dropped:
        return template

    def sub_string(text: str) -> str:
        return re.sub(
            r"\$\{([A-Za-z0-9]+)(\.[A-Za-z0-9.]+)?\}",
            lambda m: f"local-{m.group(1)}" if m.group(1) in dropped else m.group(0),
            text,
        )

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in dropped:
                return f"local-{node['Ref']}"
            if set(node) == {"Fn::GetAtt"}:
                target = node["Fn::GetAtt"]
                name = target[0] if isinstance(target, list) else str(target).split(".")[0]
                if name in dropped:
                    return f"local-{name}"
            if set(node) == {"Fn::Sub"}:
                value = node["Fn::Sub"]
                if isinstance(value, str):
                    return {"Fn::Sub": sub_string(value)}
                return {"Fn::Sub": [sub_string(value[0]), walk(value[1])]}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out = walk({k: v for k, v in template.items() if k != "Resources"})
    out["Resources"] = {}
    for lid, res in resources.items():
        if lid in dropped:
            continue
        res = walk(res)
        deps = res.get("DependsOn")
        if isinstance(deps, str) and deps in dropped:
            res.pop("DependsOn")
        elif isinstance(deps, list):
            res["DependsOn"] = [d for d in deps if d not in dropped]
        out["Resources"][lid] = res
    return out


def deploy_stack(
    stack_name: str,
    region: str,
    parameters: dict[str, str] | None = None,
    template_path: Path | None = None,
) -> StackInfo:
    """Package, transform and create the stack in the local AWS; upload the training code."""
    template_path = template_path or REPO_ROOT / "template.yaml"
    s3 = boto3.client("s3", region_name=region)
    params = dict(parameters or {})
    packaged = package(load_template(template_path), s3)
    transformed = drop_unsupported(transform(packaged, params))
    cfn = boto3.client("cloudformation", region_name=region)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(transformed),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise TemplateError(f"stack {stack_name} is {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    summaries = cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    resources = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in summaries}
    types = {r["LogicalResourceId"]: r["ResourceType"] for r in summaries}
    info = StackInfo(name=stack_name, outputs=outputs, resources=resources, types=types)
    publish_training_code(s3, info.output("ArtifactsBucketName"))
    return info


def publish_training_code(s3: Any, bucket: str) -> str:
    """Upload ``training/`` as the source the training, processing and serving containers run."""
    s3.put_object(Bucket=bucket, Key=TRAINING_CODE_KEY, Body=training_code_tarball())
    return f"s3://{bucket}/{TRAINING_CODE_KEY}"
