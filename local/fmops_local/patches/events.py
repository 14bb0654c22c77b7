"""EventBridge → Lambda and → Step Functions targets.

moto raises NotImplementedError for these target types (and on the S3 path the error is swallowed,
so later rules are skipped). Deliveries here are asynchronous, as on AWS, and honour ``Input``,
``InputPath`` and ``InputTransformer``.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

LOG = logging.getLogger(__name__)


def _render(target: dict[str, Any], event: dict[str, Any], template_parser: Any) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        node: Any = event
        for part in target["InputPath"].lstrip("$").strip(".").split("."):
            if part:
                node = node.get(part) if isinstance(node, dict) else None
        return node
    transformer = target.get("InputTransformer")
    if transformer:
        rendered = template_parser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        return rendered
    return event


def _deliver(account: str, arn: str, payload: Any) -> None:
    from moto.awslambda.models import lambda_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends
    from moto.utilities.arns import parse_arn

    parsed = parse_arn(arn)
    try:
        if parsed.service == "lambda":
            backend = lambda_backends[parsed.account][parsed.region]
            backend.invoke(
                function_name=arn,
                qualifier=None,
                body=json.dumps(payload),
                headers={"x-amz-invocation-type": "Event"},
                response_headers={},
            )
        elif parsed.service == "states":
            sfn = stepfunctions_parser_backends[parsed.account][parsed.region]
            sfn.start_execution(arn, str(uuid.uuid4()), json.dumps(payload))  # EventBridge names it at random
    except Exception:  # EventBridge retries and then drops; we log
        LOG.exception("EventBridge delivery to %s failed", arn)


def apply() -> None:
    from moto.events import models as ev

    rule_cls = ev.Rule
    if getattr(rule_cls, "_fmops_patched", False):
        return
    rule_cls._fmops_patched = True
    original = rule_cls.send_to_targets

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        ours = [t for t in self.targets if t["Arn"].split(":")[2] in ("lambda", "states")]
        others = [t for t in self.targets if t not in ours]
        for target in ours:
            payload = _render(target, original_event, ev.EventTemplateParser) if transform_input else original_event
            threading.Thread(target=_deliver, args=(self.account_id, target["Arn"], payload), daemon=True).start()
        if others:
            saved = self.targets
            self.targets = others
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = saved

    rule_cls.send_to_targets = send_to_targets
