"""Security and wiring properties of ``template.yaml``, checked one by one. No network, no AWS.

The template is read with cfn-lint's YAML loader (it understands the short intrinsic forms such as
``!Ref`` and ``!Sub``). Where a check needs AWS facts (which IAM actions support resource-level
permissions, which resource types take tags), it reads them from the data that ships with cfn-lint.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
FUNCTIONS_DIR = ROOT / "functions"
FINETUNE_ASL = ROOT / "statemachines" / "finetune.asl.json"
PLACEHOLDER_ASL = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}

KEY = "FmopsKey"
BUCKETS = ("DatasetsBucket", "ArtifactsBucket", "ReportsBucket")
TABLES = ("RunsTable", "ApprovalsTable")

# docs/CONTRACTS.md: logical id -> (folder, extra environment variables, actions it must be granted)
FUNCTIONS: dict[str, tuple[str, set[str], set[str]]] = {
    "IngestFunction": (
        "ingest",
        {"FINETUNE_STATE_MACHINE_ARN", "DATASET_PREFIX"},
        {"s3:GetObject", "states:StartExecution", "dynamodb:PutItem"},
    ),
    "PlanDatasetFunction": ("plan_dataset", {"DATA_SHARD_BYTES"}, {"s3:GetObject"}),
    "ValidateShardFunction": ("validate_shard", set(), {"s3:GetObject", "s3:PutObject"}),
    "ValidateDatasetFunction": (
        "validate_dataset",
        set(),
        {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"},
    ),
    "PlanTrainingFunction": (
        "plan_training",
        {
            "SAGEMAKER_ROLE_ARN",
            "BEDROCK_ROLE_ARN",
            "TRAINING_IMAGE_URI",
            "SUBNET_IDS",
            "TRAINING_SECURITY_GROUP_ID",
            "STAGE_NAME",
        },
        {"s3:GetObject", "dynamodb:UpdateItem"},
    ),
    "PlanEvaluationFunction": (
        "plan_evaluation",
        {"SAGEMAKER_ROLE_ARN", "PROCESSING_IMAGE_URI", "SUBNET_IDS", "TRAINING_SECURITY_GROUP_ID"},
        {"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"},
    ),
    "EvaluateFunction": ("evaluate", set(), {"s3:GetObject", "s3:PutObject"}),
    "RegisterModelFunction": (
        "register_model",
        {"INFERENCE_IMAGE_URI"},
        {
            "sagemaker:CreateModelPackageGroup",
            "sagemaker:CreateModelPackage",
            "sagemaker:DescribeModelPackageGroup",
            "s3:GetObject",
            "s3:PutObject",
            "dynamodb:UpdateItem",
        },
    ),
    "QualityGateFunction": (
        "quality_gate",
        set(),
        {"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"},
    ),
    "RequestApprovalFunction": ("request_approval", {"API_URL"}, {"dynamodb:PutItem", "sns:Publish"}),
    "ApprovalApiFunction": (
        "approval_api",
        set(),
        {
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:DeleteItem",
            "dynamodb:UpdateItem",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
            "sagemaker:UpdateModelPackage",
            "sagemaker:DescribeModelPackage",
            "sagemaker:ListModelPackages",
            "sagemaker:DescribeModelPackageGroup",
            "s3:GetObject",
            "s3:PutObject",
        },
    ),
    "DeployModelFunction": (
        "deploy_model",
        {"SAGEMAKER_ROLE_ARN", "SUBNET_IDS", "TRAINING_SECURITY_GROUP_ID"},
        {
            "sagemaker:CreateModel",
            "sagemaker:CreateEndpointConfig",
            "sagemaker:CreateEndpoint",
            "sagemaker:DescribeEndpoint",
            "iam:PassRole",
        },
    ),
    "CompleteRunFunction": ("complete_run", set(), {"dynamodb:UpdateItem", "sns:Publish"}),
    "HandleFailureFunction": (
        "handle_failure",
        set(),
        {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "sagemaker:UpdateModelPackage", "sns:Publish"},
    ),
    # The HPO state machine's functions (docs/TUNING.md).
    "PlanTuningFunction": ("plan_tuning", set(), {"dynamodb:UpdateItem"}),
    "RecordTuningFunction": (
        "record_tuning",
        set(),
        {
            "sagemaker:DescribeHyperParameterTuningJob",
            "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
            "sagemaker:DescribeTrainingJob",
            "s3:PutObject",
            "dynamodb:UpdateItem",
        },
    ),
}

COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    "RUNS_TABLE",
    "APPROVALS_TABLE",
    "NOTIFICATION_TOPIC_ARN",
    "DATASETS_BUCKET",
    "ARTIFACTS_BUCKET",
    "REPORTS_BUCKET",
    "KMS_KEY_ARN",
    "STACK_NAME",
}

SUBSTITUTIONS = {
    "PlanDatasetFunctionArn",
    "ValidateShardFunctionArn",
    "ValidateDatasetFunctionArn",
    "PlanTrainingFunctionArn",
    "PlanEvaluationFunctionArn",
    "EvaluateFunctionArn",
    "RegisterModelFunctionArn",
    "QualityGateFunctionArn",
    "RequestApprovalFunctionArn",
    "DeployModelFunctionArn",
    "CompleteRunFunctionArn",
    "HandleFailureFunctionArn",
    "NotificationTopicArn",
    "SageMakerRoleArn",
    "BedrockRoleArn",
    "HpoStateMachineArn",
}
HPO_ASL = ROOT / "statemachines" / "hpo.asl.json"
HPO_SUBSTITUTIONS = {"PlanTuningFunctionArn", "RecordTuningFunctionArn", "SageMakerRoleArn"}

REQUIRED_INTERFACE_ENDPOINTS = {"sagemaker.api", "sagemaker.runtime", "sts", "logs", "ecr.api", "ecr.dkr"}

API_ROUTES = {
    ("GET", "/runs/{run_id}"),
    ("GET", "/approvals"),
    ("GET", "/approvals/{run_id}"),
    ("POST", "/approvals/{run_id}/approve"),
    ("POST", "/approvals/{run_id}/reject"),
    ("GET", "/models/{group}"),
    ("GET", "/models/{group}/compare"),
    ("GET", "/models/{group}/{version}"),
    ("GET", "/models/{group}/{version}/lineage"),
    ("POST", "/models/{group}/{version}/approve"),
    ("POST", "/models/{group}/{version}/reject"),
}

# Resources that take tags but carry none in the template, each with the reason.
UNTAGGED: dict[str, str] = {}


# --------------------------------------------------------------------------------------------- helpers
@lru_cache(maxsize=1)
def template() -> dict[str, Any]:
    from cfnlint.decode import decode_str

    parsed, matches = decode_str(TEMPLATE.read_text())
    assert not matches, [str(m) for m in matches]
    assert parsed is not None
    plain: dict[str, Any] = json.loads(json.dumps(parsed, default=str))
    return plain


def res() -> dict[str, dict[str, Any]]:
    return template()["Resources"]


def props(logical_id: str) -> dict[str, Any]:
    return res()[logical_id].get("Properties", {})


def of_type(resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in res().items() if v["Type"] == resource_type}


def refs(value: Any) -> set[str]:
    """Logical ids (and parameters) that ``value`` references through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text = sub if isinstance(sub, str) else sub[0]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
        for v in value.values():
            found |= refs(v)
    elif isinstance(value, list):
        for v in value:
            found |= refs(v)
    return {f for f in found if not f.startswith("AWS::")}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def merged_env(logical_id: str) -> dict[str, Any]:
    env = dict(template()["Globals"]["Function"]["Environment"]["Variables"])
    env.update(props(logical_id).get("Environment", {}).get("Variables", {}))
    return env


def identity_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every statement of every identity policy in the template."""
    for logical_id, r in res().items():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::IAM::Role":
            for policy in p.get("Policies", []):
                for st in as_list(policy["PolicyDocument"]["Statement"]):
                    yield logical_id, st
        elif r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for st in as_list(p["PolicyDocument"]["Statement"]):
                yield logical_id, st
        elif r["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for policy in as_list(p.get("Policies", [])):
                assert isinstance(policy, dict) and "Statement" in policy, (
                    f"{logical_id}: only inline policy documents (no managed policies or templates)"
                )
                for st in as_list(policy["Statement"]):
                    yield logical_id, st


def granted_actions(owner: str) -> set[str]:
    return {
        a for o, st in identity_statements() if o == owner and st["Effect"] == "Allow" for a in as_list(st["Action"])
    }


@lru_cache(maxsize=1)
def iam_reference() -> dict[str, Any]:
    """cfn-lint's copy of the IAM service authorization reference (actions -> resource types)."""
    path = resources.files("cfnlint.data.AdditionalSpecs").joinpath("Policies.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def resource_types_of(action: str) -> list[str]:
    service, name = action.split(":", 1)
    entry = iam_reference()[service]["Actions"][name.lower()]
    types: list[str] = entry.get("Resources", [])
    return types


def asl_definition() -> dict[str, Any] | None:
    if not FINETUNE_ASL.exists():
        return None
    definition: dict[str, Any] = json.loads(FINETUNE_ASL.read_text())
    return None if definition == PLACEHOLDER_ASL else definition


def task_states(states: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in states.values():
        if state.get("Type") == "Task":
            yield state
        for branch in state.get("Branches", []):
            yield from task_states(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from task_states(state[key]["States"])


# --------------------------------------------------------------------------------------------- header
def test_template_is_sam() -> None:
    t = template()
    assert t["AWSTemplateFormatVersion"] == "2010-09-09"
    assert t["Transform"] == "AWS::Serverless-2016-10-31"


def test_parameters() -> None:
    p = template()["Parameters"]
    assert p["StageName"]["AllowedValues"] == ["dev", "staging", "prod"]
    assert p["NotificationEmail"]["Default"] == ""
    assert p["VpcCidr"]["Default"] == "10.42.0.0/16"
    assert "ApprovalTokenTtlDays" in p
    for name in ("TrainingImageUri", "InferenceImageUri", "ProcessingImageUri"):
        assert p[name]["Default"] == "", f"{name}: empty selects the regional Hugging Face DLC"
    text = TEMPLATE.read_text()
    assert "huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04" in text
    assert "huggingface-pytorch-inference:" in text
    assert "763104351884.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/" in text


def test_no_hardcoded_partition() -> None:
    assert "arn:aws:" not in TEMPLATE.read_text(), "use arn:${AWS::Partition}:"


# --------------------------------------------------------------------------------------------- KMS
def test_kms_key_rotates_and_has_stage_alias() -> None:
    assert res()[KEY]["Type"] == "AWS::KMS::Key"
    assert props(KEY)["EnableKeyRotation"] is True
    aliases = of_type("AWS::KMS::Alias")
    assert any(
        a["Properties"]["AliasName"] == {"Fn::Sub": "alias/fmops-${StageName}"}
        and refs(a["Properties"]["TargetKeyId"]) == {KEY}
        for a in aliases.values()
    )


def test_kms_key_policy_admin_is_account_root_only() -> None:
    statements = props(KEY)["KeyPolicy"]["Statement"]
    root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    admin = [s for s in statements if "kms:*" in as_list(s["Action"])]
    assert len(admin) == 1 and admin[0]["Principal"] == {"AWS": root}
    for st in statements:
        assert st["Principal"] != "*" and st["Principal"].get("AWS") in (None, root)
        if "Service" in st["Principal"]:
            assert "Condition" in st, f"service statement {st['Sid']} must be scoped by a condition"


# --------------------------------------------------------------------------------------------- S3
def test_exactly_the_three_buckets() -> None:
    assert set(of_type("AWS::S3::Bucket")) == set(BUCKETS)


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_is_versioned_encrypted_private(bucket: str) -> None:
    p = props(bucket)
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert refs(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == {KEY}
    assert rule["BucketKeyEnabled"] is True
    assert p["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert p["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "AccessControl" not in p


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_lifecycle_and_events(bucket: str) -> None:
    p = props(bucket)
    rules = [r for r in p["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    assert any("NoncurrentVersionExpiration" in r for r in rules)
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)
    notification = p["NotificationConfiguration"]
    assert notification["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    # S3 -> Lambda notifications create a cycle the emulated AWS cannot resolve: EventBridge only.
    assert set(notification) == {"EventBridgeConfiguration"}


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_policy_denies_insecure_transport(bucket: str) -> None:
    policies = [p for p in of_type("AWS::S3::BucketPolicy").values() if refs(p["Properties"]["Bucket"]) == {bucket}]
    assert len(policies) == 1, f"{bucket} needs exactly one bucket policy"
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    deny = [
        s
        for s in statements
        if s["Effect"] == "Deny"
        and s["Principal"] == "*"
        and "s3:*" in as_list(s["Action"])
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]
    assert deny, f"{bucket}: no Deny on aws:SecureTransport=false"
    covered = as_list(deny[0]["Resource"])
    assert any(r == {"Fn::GetAtt": [bucket, "Arn"]} for r in covered)
    assert any(r == {"Fn::Sub": f"${{{bucket}.Arn}}/*"} for r in covered)


def test_no_s3_event_sources_on_functions() -> None:
    for logical_id, fn in of_type("AWS::Serverless::Function").items():
        for event in fn["Properties"].get("Events", {}).values():
            assert event["Type"] != "S3", f"{logical_id}: use the EventBridge rule, not an S3 event"


# --------------------------------------------------------------------------------------------- DynamoDB, SNS, SQS
def test_tables_are_plain_dynamodb_tables() -> None:
    assert not of_type("AWS::Serverless::SimpleTable")
    assert set(of_type("AWS::DynamoDB::Table")) == set(TABLES)


@pytest.mark.parametrize("table", TABLES)
def test_table_pitr_kms_on_demand(table: str) -> None:
    p = props(table)
    assert p["KeySchema"] == [{"AttributeName": "run_id", "KeyType": "HASH"}]
    assert p["AttributeDefinitions"] == [{"AttributeName": "run_id", "AttributeType": "S"}]
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    sse = p["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    assert refs(sse["KMSMasterKeyId"]) == {KEY}


def test_approvals_expire() -> None:
    assert props("ApprovalsTable")["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_topic_is_encrypted_and_tls_only() -> None:
    assert refs(props("NotificationTopic")["KmsMasterKeyId"]) == {KEY}
    (policy,) = of_type("AWS::SNS::TopicPolicy").values()
    assert refs(policy["Properties"]["Topics"]) == {"NotificationTopic"}
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny"
        and s["Principal"] == "*"
        and "sns:Publish" in as_list(s["Action"])
        and s["Condition"]["Bool"]["aws:SecureTransport"] in ("false", False)
        for s in statements
    )


def test_email_subscription_is_optional() -> None:
    (sub,) = of_type("AWS::SNS::Subscription").values()
    assert sub["Condition"] == "HasNotificationEmail"
    assert template()["Conditions"]["HasNotificationEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }


def test_queues_are_encrypted_and_tls_only() -> None:
    queues = of_type("AWS::SQS::Queue")
    assert queues
    for logical_id, q in queues.items():
        assert refs(q["Properties"]["KmsMasterKeyId"]) == {KEY}, logical_id
        policies = [
            p for p in of_type("AWS::SQS::QueuePolicy").values() if logical_id in refs(p["Properties"]["Queues"])
        ]
        assert any(
            s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] in ("false", False)
            for p in policies
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ), logical_id


def test_log_groups_are_encrypted_with_retention() -> None:
    groups = of_type("AWS::Logs::LogGroup")
    assert groups
    for logical_id, g in groups.items():
        assert refs(g["Properties"]["KmsKeyId"]) == {KEY}, logical_id
        assert "RetentionInDays" in g["Properties"], logical_id


# --------------------------------------------------------------------------------------------- network
def test_no_internet_or_nat_anywhere() -> None:
    forbidden = {
        "AWS::EC2::InternetGateway",
        "AWS::EC2::EgressOnlyInternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::TransitGatewayAttachment",
        "AWS::EC2::VPCPeeringConnection",
        "AWS::EC2::EIP",
    }
    assert not [k for k, r in res().items() if r["Type"] in forbidden]
    # No explicit routes at all: the private route table holds only the local route and the S3
    # gateway endpoint's prefix-list route (added by the endpoint itself).
    assert not of_type("AWS::EC2::Route")


def test_private_subnets_in_two_azs_on_the_private_route_table() -> None:
    subnets = of_type("AWS::EC2::Subnet")
    assert len(subnets) == 2
    azs = []
    for logical_id, s in subnets.items():
        p = s["Properties"]
        assert p.get("MapPublicIpOnLaunch") is False, logical_id
        index, source = p["AvailabilityZone"]["Fn::Select"]
        assert source == {"Fn::GetAZs": ""}
        azs.append(int(index))
    assert sorted(azs) == [0, 1]
    associations = {
        next(iter(refs(a["Properties"]["SubnetId"]))): refs(a["Properties"]["RouteTableId"])
        for a in of_type("AWS::EC2::SubnetRouteTableAssociation").values()
    }
    assert associations == {s: {"PrivateRouteTable"} for s in subnets}


def _service(endpoint: dict[str, Any]) -> str:
    name = endpoint["Properties"]["ServiceName"]["Fn::Sub"]
    assert name.startswith("com.amazonaws.${AWS::Region}.")
    return str(name.removeprefix("com.amazonaws.${AWS::Region}."))


def test_vpc_endpoints() -> None:
    endpoints = {_service(e): e for e in of_type("AWS::EC2::VPCEndpoint").values()}
    s3 = endpoints["s3"]["Properties"]
    assert s3["VpcEndpointType"] == "Gateway"
    assert refs(s3["RouteTableIds"]) == {"PrivateRouteTable"}
    missing = REQUIRED_INTERFACE_ENDPOINTS - set(endpoints)
    assert not missing, f"missing interface endpoints: {sorted(missing)}"
    for service, e in endpoints.items():
        if service == "s3":
            continue
        p = e["Properties"]
        assert p["VpcEndpointType"] == "Interface", service
        assert p["PrivateDnsEnabled"] is True, service
        assert refs(p["SubnetIds"]) == {"PrivateSubnet1", "PrivateSubnet2"}, service
        assert refs(p["SecurityGroupIds"]) == {"EndpointSecurityGroup"}, service
        if service not in REQUIRED_INTERFACE_ENDPOINTS:
            assert e.get("Condition"), f"optional endpoint {service} must sit behind a condition"


def test_endpoint_security_group_admits_https_from_the_vpc_only() -> None:
    (rule,) = props("EndpointSecurityGroup")["SecurityGroupIngress"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    assert rule["CidrIp"] == {"Ref": "VpcCidr"}


def test_training_security_group_ingress_only_from_itself() -> None:
    sg = props("TrainingSecurityGroup")
    assert "SecurityGroupIngress" not in sg, "ingress rules live in separate resources"
    ingress = [
        r["Properties"]
        for r in of_type("AWS::EC2::SecurityGroupIngress").values()
        if refs(r["Properties"]["GroupId"]) == {"TrainingSecurityGroup"}
    ]
    assert ingress, "peers of the group must reach each other (distributed training)"
    for rule in ingress:
        assert refs(rule["SourceSecurityGroupId"]) == {"TrainingSecurityGroup"}
        assert not {"CidrIp", "CidrIpv6", "SourcePrefixListId"} & set(rule)


def test_training_security_group_egress() -> None:
    for rule in props("TrainingSecurityGroup")["SecurityGroupEgress"]:
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    self_egress = [
        r["Properties"]
        for r in of_type("AWS::EC2::SecurityGroupEgress").values()
        if refs(r["Properties"]["GroupId"]) == {"TrainingSecurityGroup"}
    ]
    assert self_egress and all(refs(r["DestinationSecurityGroupId"]) == {"TrainingSecurityGroup"} for r in self_egress)


def test_vpc_flow_logs() -> None:
    (flow,) = of_type("AWS::EC2::FlowLog").values()
    assert refs(flow["Properties"]["ResourceId"]) == {"Vpc"}
    assert flow["Properties"]["TrafficType"] == "ALL"


# --------------------------------------------------------------------------------------------- IAM
def test_no_wildcard_actions() -> None:
    offenders = []
    for owner, st in identity_statements():
        assert "NotAction" not in st and "NotResource" not in st, owner
        if st["Effect"] != "Allow":
            continue
        for action in as_list(st["Action"]):
            if action == "*" or action.endswith(":*") or "*" in action.split(":", 1)[0]:
                offenders.append((owner, st.get("Sid"), action))
    assert not offenders, offenders


# Actions whose only listed resource type does not apply to how the stack calls them.
STAR_EXCEPTIONS = {
    "cloudwatch:PutMetricData": "plain metrics are no resource (the optional 'dataset' type is another "
    "feature); scoped by the cloudwatch:namespace condition instead",
}


def test_resource_star_only_where_the_action_has_no_resource_level_permissions() -> None:
    offenders = []
    for owner, st in identity_statements():
        if st["Effect"] != "Allow" or "*" not in as_list(st["Resource"]):
            continue
        for action in as_list(st["Action"]):
            if resource_types_of(action) and action not in STAR_EXCEPTIONS:
                offenders.append((owner, st.get("Sid"), action, resource_types_of(action)[:3]))
    assert not offenders, offenders


def test_scoped_resources_are_stack_resources_or_account_arns() -> None:
    for owner, st in identity_statements():
        for resource in as_list(st["Resource"]):
            if resource == "*":
                continue
            assert isinstance(resource, dict), f"{owner}/{st.get('Sid')}: literal ARN {resource!r}"
            if "Fn::Sub" in resource:
                text = resource["Fn::Sub"]
                assert text.startswith("${") or text.startswith("arn:${AWS::Partition}:"), (owner, text)


def test_pass_role_only_of_the_service_roles_to_their_service() -> None:
    allowed = {"SageMakerExecutionRole": "sagemaker.amazonaws.com", "BedrockCustomizationRole": "bedrock.amazonaws.com"}
    passes = [(o, st) for o, st in identity_statements() if "iam:PassRole" in as_list(st["Action"])]
    assert passes
    for owner, st in passes:
        (role,) = refs(st["Resource"])
        assert role in allowed, (owner, role)
        assert st["Condition"]["StringEquals"]["iam:PassedToService"] == allowed[role], owner


def test_service_roles_trust_only_their_service() -> None:
    expected = {
        "SageMakerExecutionRole": "sagemaker.amazonaws.com",
        "BedrockCustomizationRole": "bedrock.amazonaws.com",
        "FinetuneStateMachineRole": "states.amazonaws.com",
        "HpoStateMachineRole": "states.amazonaws.com",
    }
    for role, service in expected.items():
        (st,) = props(role)["AssumeRolePolicyDocument"]["Statement"]
        assert st["Principal"] == {"Service": service}
    bedrock = props("BedrockCustomizationRole")["AssumeRolePolicyDocument"]["Statement"][0]
    assert bedrock["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_cloudwatch_metrics_limited_by_namespace() -> None:
    for owner, st in identity_statements():
        if "cloudwatch:PutMetricData" in as_list(st["Action"]):
            assert "cloudwatch:namespace" in json.dumps(st.get("Condition", {})), owner


# --------------------------------------------------------------------------------------------- functions
def test_globals() -> None:
    g = template()["Globals"]["Function"]
    assert g["Runtime"] == "python3.11"
    assert g["Architectures"] == ["arm64"]
    assert (g["Timeout"], g["MemorySize"]) == (60, 512)
    assert g["Tracing"] == "Active"
    assert g["Handler"] == "app.lambda_handler"
    assert g["Layers"] == [{"Ref": "FmopsLayer"}]
    assert refs(g["KmsKeyArn"]) == {KEY}
    env = g["Environment"]["Variables"]
    assert COMMON_ENV <= set(env)
    assert (env["POWERTOOLS_SERVICE_NAME"], env["POWERTOOLS_METRICS_NAMESPACE"]) == ("fmops", "fmops")


def test_layer() -> None:
    layer = res()["FmopsLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/fmops/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.11"]
    assert layer["Metadata"]["BuildMethod"] == "python3.11"


def test_the_contract_functions_and_no_others() -> None:
    functions = of_type("AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    for logical_id, (folder, _, _) in FUNCTIONS.items():
        assert functions[logical_id]["Properties"]["CodeUri"] == f"functions/{folder}/"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_has_its_own_least_privilege_role(logical_id: str) -> None:
    p = props(logical_id)
    assert "Role" not in p, "SAM creates one role per function from its Policies"
    assert p.get("Policies"), "every function states its permissions"
    granted = granted_actions(logical_id)
    missing = FUNCTIONS[logical_id][2] - granted
    assert not missing, f"{logical_id} lacks {sorted(missing)} (docs/CONTRACTS.md)"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_environment(logical_id: str) -> None:
    env = merged_env(logical_id)
    missing = (COMMON_ENV | FUNCTIONS[logical_id][1]) - set(env)
    assert not missing, f"{logical_id} lacks {sorted(missing)} (docs/CONTRACTS.md)"


def test_plan_training_picks_the_image_itself_and_writes_only_the_runs_table() -> None:
    env = merged_env("PlanTrainingFunction")
    assert env["TRAINING_IMAGE_URI"]["Fn::If"] == ["UseDefaultTrainingImage", "auto", {"Ref": "TrainingImageUri"}]
    assert env["STAGE_NAME"] == {"Ref": "StageName"}
    statements = [st for owner, st in identity_statements() if owner == "PlanTrainingFunction"]
    writes = [st for st in statements if any(a.startswith("dynamodb:") for a in as_list(st["Action"]))]
    assert [as_list(st["Action"]) for st in writes] == [["dynamodb:UpdateItem"]]
    assert refs(writes[0]["Resource"]) == {"RunsTable"}
    datasets = [st for st in statements if "DatasetsBucket" in refs(st["Resource"])]
    assert [(as_list(st["Action"]), st["Resource"]) for st in datasets] == [
        (["s3:GetObject"], {"Fn::Sub": "${DatasetsBucket.Arn}/datasets/*/train.bedrock.jsonl"})
    ]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_logs_to_its_encrypted_log_group(logical_id: str) -> None:
    p = props(logical_id)
    (group,) = refs(p["LoggingConfig"]["LogGroup"])
    name = props(group)["LogGroupName"]["Fn::Sub"]
    assert name == "/aws/lambda/" + p["FunctionName"]["Fn::Sub"]


def test_functions_run_outside_the_vpc() -> None:
    # Functions only call AWS APIs (TLS); none needs the VPC. If one ever gets VpcConfig, every
    # service it calls needs an endpoint (states, dynamodb, sns, ...): revisit the endpoint list.
    for logical_id, fn in of_type("AWS::Serverless::Function").items():
        assert "VpcConfig" not in fn["Properties"], logical_id
    assert "VpcConfig" not in template()["Globals"]["Function"]


def test_function_folders_match_the_template() -> None:
    folders = (
        {p.name for p in FUNCTIONS_DIR.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
        if FUNCTIONS_DIR.is_dir()
        else set()
    )
    if not folders:
        pytest.skip("functions/ has no folders yet")
    in_template = {
        fn["Properties"]["CodeUri"].removeprefix("functions/").rstrip("/")
        for fn in of_type("AWS::Serverless::Function").values()
    }
    assert not in_template - folders, f"CodeUri folders missing from functions/: {sorted(in_template - folders)}"
    assert not folders - in_template, f"functions/ folders not in template.yaml: {sorted(folders - in_template)}"


# --------------------------------------------------------------------------------------------- ingestion
def test_ingestion_is_an_eventbridge_rule_with_dead_letters() -> None:
    rules = [
        r["Properties"]
        for r in of_type("AWS::Events::Rule").values()
        if any(refs(t["Arn"]) == {"IngestFunction"} for t in r["Properties"]["Targets"])
    ]
    assert len(rules) == 1
    rule = rules[0]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert refs(pattern["detail"]["bucket"]["name"]) == {"DatasetsBucket"}
    assert pattern["detail"]["object"]["key"] == [{"prefix": "datasets/"}]
    (target,) = rule["Targets"]
    assert refs(target["DeadLetterConfig"]["Arn"]) == {"IngestDeadLetterQueue"}
    assert "RetryPolicy" in target
    permissions = [p["Properties"] for p in of_type("AWS::Lambda::Permission").values()]
    assert any(
        refs(p["FunctionName"]) == {"IngestFunction"}
        and p["Principal"] == "events.amazonaws.com"
        and refs(p["SourceArn"])
        for p in permissions
    )
    on_failure = props("IngestFunction")["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert refs(on_failure["Destination"]) == {"IngestDeadLetterQueue"}


# --------------------------------------------------------------------------------------------- API
def test_api_is_iam_authenticated_traced_and_logged() -> None:
    api = res()["FmopsApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    p = api["Properties"]
    assert p["StageName"] == {"Ref": "StageName"}
    assert p["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert p["TracingEnabled"] is True
    (group,) = refs(p["AccessLogSetting"]["DestinationArn"])
    assert refs(props(group)["KmsKeyId"]) == {KEY}
    (setting,) = p["MethodSettings"]
    assert setting["LoggingLevel"] and setting["DataTraceEnabled"] is False


def test_api_routes() -> None:
    routes = set()
    for fn in of_type("AWS::Serverless::Function").values():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                assert event["Properties"]["RestApiId"] == {"Ref": "FmopsApi"}
                assert "Auth" not in event["Properties"], "no route may opt out of IAM auth"
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    assert routes == API_ROUTES
    assert set(refs(props("ApprovalApiFunction")["Events"])) == {"FmopsApi"}


def test_request_approval_knows_the_api_url() -> None:
    url = props("RequestApprovalFunction")["Environment"]["Variables"]["API_URL"]
    assert url == {"Fn::Sub": "https://${FmopsApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}"}


# --------------------------------------------------------------------------------------------- state machine
def test_state_machine() -> None:
    sm = res()["FinetuneStateMachine"]
    assert sm["Type"] == "AWS::Serverless::StateMachine"
    p = sm["Properties"]
    assert p["Type"] == "STANDARD"
    assert p["DefinitionUri"] == "statemachines/finetune.asl.json"
    assert set(p["DefinitionSubstitutions"]) == SUBSTITUTIONS
    assert refs(p["Role"]) == {"FinetuneStateMachineRole"}
    assert "Policies" not in p
    assert p["Logging"]["Level"] == "ALL" and p["Logging"]["IncludeExecutionData"] is False
    (dest,) = p["Logging"]["Destinations"]
    (group,) = refs(dest["CloudWatchLogsLogGroup"]["LogGroupArn"])
    assert refs(props(group)["KmsKeyId"]) == {KEY}
    assert p["Tracing"]["Enabled"] is True


def test_state_machine_substitutions_match_the_definition() -> None:
    definition = asl_definition()
    if definition is None:
        pytest.skip("statemachines/finetune.asl.json is absent or still the placeholder")
    used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", FINETUNE_ASL.read_text()))
    declared = set(props("FinetuneStateMachine")["DefinitionSubstitutions"])
    assert used == declared, f"unused: {sorted(declared - used)}, undeclared: {sorted(used - declared)}"


def test_state_machine_role_invokes_every_substituted_function() -> None:
    subs = props("FinetuneStateMachine")["DefinitionSubstitutions"]
    functions = {next(iter(refs(v))) for k, v in subs.items() if k.endswith("FunctionArn")}
    invokable = set()
    for owner, st in identity_statements():
        if owner == "FinetuneStateMachineRole" and "lambda:InvokeFunction" in as_list(st["Action"]):
            invokable |= refs(st["Resource"])
    assert functions == invokable


# ASL task resource -> the IAM actions its role needs (Step Functions' service integration docs).
_INTEGRATIONS = {
    "lambda:invoke": {"lambda:InvokeFunction"},
    "lambda:invoke.waitForTaskToken": {"lambda:InvokeFunction"},
    "sns:publish": {"sns:Publish"},
    "sagemaker:createTrainingJob.sync": {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
        "iam:PassRole",
    },
    "sagemaker:createProcessingJob.sync": {
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
        "iam:PassRole",
    },
    "bedrock:createModelCustomizationJob.sync": {
        "bedrock:CreateModelCustomizationJob",
        "bedrock:GetModelCustomizationJob",
        "bedrock:StopModelCustomizationJob",
        "iam:PassRole",
    },
    "sagemaker:createHyperParameterTuningJob.sync": {
        "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:StopHyperParameterTuningJob",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
        "iam:PassRole",
    },
    "states:startExecution.sync:2": {
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    },
}


def _needed(resource: str) -> set[str]:
    integration = resource.removeprefix("arn:aws:states:::")
    if integration.startswith("aws-sdk:"):
        _, service, action = integration.split(":", 2)
        return {f"{service}:{action[0].upper()}{action[1:]}"}
    assert integration in _INTEGRATIONS, f"unknown integration {resource}: add its IAM actions here"
    return _INTEGRATIONS[integration]


def test_state_machine_role_covers_every_task_of_the_definition() -> None:
    definition = asl_definition()
    if definition is None:
        pytest.skip("statemachines/finetune.asl.json is absent or still the placeholder")
    granted = granted_actions("FinetuneStateMachineRole")
    missing = {
        (state["Resource"], action)
        for state in task_states(definition["States"])
        for action in _needed(state["Resource"])
        if action not in granted
    }
    assert not missing, sorted(missing)


# --------------------------------------------------------------------------------------------- HPO state machine
def test_hpo_state_machine() -> None:
    sm = res()["HpoStateMachine"]
    assert sm["Type"] == "AWS::Serverless::StateMachine"
    p = sm["Properties"]
    assert p["Type"] == "STANDARD"
    assert p["Name"] == {"Fn::Sub": "${AWS::StackName}-hpo"}
    assert p["DefinitionUri"] == "statemachines/hpo.asl.json"
    assert set(p["DefinitionSubstitutions"]) == HPO_SUBSTITUTIONS
    assert set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", HPO_ASL.read_text())) == HPO_SUBSTITUTIONS
    assert refs(p["Role"]) == {"HpoStateMachineRole"}
    assert "Policies" not in p
    assert p["Logging"]["Level"] == "ALL" and p["Logging"]["IncludeExecutionData"] is False
    (dest,) = p["Logging"]["Destinations"]
    (group,) = refs(dest["CloudWatchLogsLogGroup"]["LogGroupArn"])
    assert refs(props(group)["KmsKeyId"]) == {KEY}
    assert p["Tracing"]["Enabled"] is True


def test_hpo_role_invokes_its_functions_and_covers_every_task() -> None:
    subs = props("HpoStateMachine")["DefinitionSubstitutions"]
    functions = {next(iter(refs(v))) for k, v in subs.items() if k.endswith("FunctionArn")}
    invokable = set()
    for owner, st in identity_statements():
        if owner == "HpoStateMachineRole" and "lambda:InvokeFunction" in as_list(st["Action"]):
            invokable |= refs(st["Resource"])
    assert functions == invokable == {"PlanTuningFunction", "RecordTuningFunction"}
    granted = granted_actions("HpoStateMachineRole")
    definition = json.loads(HPO_ASL.read_text())
    missing = {
        (state["Resource"], action)
        for state in task_states(definition["States"])
        for action in _needed(state["Resource"])
        if action not in granted
    }
    assert not missing, sorted(missing)


def test_finetune_role_starts_only_the_hpo_state_machine() -> None:
    starts = [
        st
        for owner, st in identity_statements()
        if owner == "FinetuneStateMachineRole" and "states:StartExecution" in as_list(st["Action"])
    ]
    targets = [r for st in starts for r in as_list(st["Resource"])]
    assert {"Ref": "HpoStateMachine"} in targets
    assert props("FinetuneStateMachine")["DefinitionSubstitutions"]["HpoStateMachineArn"] == {"Ref": "HpoStateMachine"}
    executions = [
        st
        for owner, st in identity_statements()
        if owner == "FinetuneStateMachineRole" and "states:DescribeExecution" in as_list(st["Action"])
    ]
    scoped = {r["Fn::Sub"] for st in executions for r in as_list(st["Resource"])}
    assert "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-hpo:*" in scoped


def test_tuning_results_are_read_only_for_this_stacks_jobs() -> None:
    statements = [st for owner, st in identity_statements() if owner == "RecordTuningFunction"]
    sagemaker = [st for st in statements if any(a.startswith("sagemaker:") for a in as_list(st["Action"]))]
    assert sagemaker
    for st in sagemaker:
        assert all(a.split(":")[1].startswith(("Describe", "List")) for a in as_list(st["Action"]))
        assert st["Condition"]["StringEquals"]["aws:ResourceTag/fmops:stack"] == {"Ref": "AWS::StackName"}
    writes = [st for st in statements if "s3:PutObject" in as_list(st["Action"])]
    assert [st["Resource"] for st in writes] == [{"Fn::Sub": "${ReportsBucket.Arn}/runs/*"}]


# --------------------------------------------------------------------------------------------- tags, outputs
def test_everything_taggable_carries_the_cost_allocation_tags() -> None:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    expected = {"fmops:stage": {"Ref": "StageName"}, "fmops:stack": {"Ref": "AWS::StackName"}}
    assert dict(template()["Globals"]["Function"]["Tags"]) == expected
    untagged = []
    for logical_id, r in res().items():
        if logical_id in UNTAGGED:
            continue
        if r["Type"] in ("AWS::Serverless::Api", "AWS::Serverless::StateMachine"):
            tags = r["Properties"].get("Tags", {})
        elif r["Type"].startswith("AWS::Serverless::"):
            continue  # functions: Globals (checked above); layers take no tags
        else:
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", r["Type"]).schema
            if "Tags" not in schema.get("properties", {}):
                continue
            tags = {t["Key"]: t["Value"] for t in r["Properties"].get("Tags", [])}
        if any(tags.get(k) != v for k, v in expected.items()):
            untagged.append(logical_id)
    assert not untagged, untagged


def test_outputs() -> None:
    outputs = set(template()["Outputs"])
    assert {
        "DatasetsBucketName",
        "ArtifactsBucketName",
        "ReportsBucketName",
        "RunsTableName",
        "ApprovalsTableName",
        "NotificationTopicArn",
        "FinetuneStateMachineArn",
        "HpoStateMachineArn",
        "ApiUrl",
        "SageMakerExecutionRoleArn",
        "BedrockCustomizationRoleArn",
        "PrivateSubnetIds",
        "TrainingSecurityGroupId",
        "KmsKeyArn",
    } <= outputs


# --------------------------------------------------------------------------------------------- samconfig, lint
def test_samconfig_environments() -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    assert config["version"] == 0.1
    for env, stage in (("default", "dev"), ("dev", "dev"), ("staging", "staging"), ("prod", "prod")):
        deploy = config[env]["deploy"]["parameters"]
        assert config[env]["global"]["parameters"]["stack_name"] == f"fmops-{stage}"
        assert deploy["parameter_overrides"] == f'StageName="{stage}"'
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
        assert deploy["confirm_changeset"] is (stage == "prod")
        assert deploy["tags"]
        assert config[env]["build"]["parameters"] == {"cached": True, "parallel": True}


def test_cfn_lint_reports_nothing() -> None:
    from cfnlint.api import lint
    from cfnlint.config import ManualArgs

    matches = lint(
        TEMPLATE.read_text(),
        config=ManualArgs(regions=["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"]),
    )
    assert not matches, "\n".join(str(m) for m in matches)
