"""CloudFormation resource handlers that moto gets wrong for this template.

- State machines are created in the executing backend (moto puts them in the non-executing one) and
  ``DefinitionSubstitutions`` are applied (moto ignores them).
- KMS keys accept CloudFormation's ``Tags`` (moto's handler passes them on in the wrong shape and fails).
- Buckets get their ``VersioningConfiguration`` and EventBridge ``NotificationConfiguration`` (ignored
  by moto's handler), so that versioned S3 events reach the ingestion rule.
"""

from __future__ import annotations

import re
from typing import Any


def _substitute(definition: str, substitutions: dict[str, Any]) -> str:
    def repl(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in substitutions:
            raise ValueError(f"DefinitionSubstitutions has no value for ${{{key}}}")
        return str(substitutions[key])

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", repl, definition)


def apply() -> None:
    from moto.s3 import models as s3m
    from moto.stepfunctions import models as sfm
    from moto.stepfunctions import responses as sfr

    if getattr(sfm.StateMachine, "_fmops_patched", False):
        return
    sfm.StateMachine._fmops_patched = True

    def create_state_machine(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        props = cloudformation_json["Properties"]
        name = props.get("StateMachineName", resource_name)
        definition = props.get("DefinitionString", "")
        if not isinstance(definition, str):
            import json

            definition = json.dumps(definition)
        definition = _substitute(definition, props.get("DefinitionSubstitutions") or {})
        tags = [{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags", [])]
        backend = sfr.get_backend(account_id, region_name)
        return backend.create_state_machine(name, definition, props.get("RoleArn", ""), tags=tags)

    sfm.StateMachine.create_from_cloudformation_json = classmethod(create_state_machine)

    original_bucket = s3m.FakeBucket.create_from_cloudformation_json.__func__

    def create_bucket(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        bucket = original_bucket(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        props = cloudformation_json.get("Properties", {})
        backend = s3m.s3_backends[account_id][s3m.get_partition(region_name)]
        status = (props.get("VersioningConfiguration") or {}).get("Status")
        if status:
            backend.put_bucket_versioning(bucket.name, status)
        notification = props.get("NotificationConfiguration") or {}
        if (notification.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled") in (True, "true"):
            bucket.set_notification_configuration({"EventBridgeConfiguration": {}})
        return bucket

    s3m.FakeBucket.create_from_cloudformation_json = classmethod(create_bucket)

    from moto.kms import models as kmsm

    original_key = kmsm.Key.create_from_cloudformation_json.__func__

    def create_key(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        # CloudFormation tags are {Key, Value}; moto's KMS backend wants the API's {TagKey, TagValue}.
        props = dict(cloudformation_json.get("Properties", {}))
        props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props.get("Tags", [])]
        return original_key(
            cls, resource_name, {**cloudformation_json, "Properties": props}, account_id, region_name, **kwargs
        )

    kmsm.Key.create_from_cloudformation_json = classmethod(create_key)
