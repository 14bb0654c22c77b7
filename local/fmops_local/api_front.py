"""A small local stand-in for API Gateway (REST, IAM auth) in front of the same Lambda handlers.

Routes come from the ``Api`` events of the functions in ``template.yaml``. Each request must carry a
valid SigV4 signature (service ``execute-api``) made with the local AWS's credentials, as API Gateway
requires with ``AWS_IAM`` auth; the caller's identity reaches the handler in
``requestContext.identity`` exactly as on AWS. The request becomes an API Gateway proxy event and is
delivered through the local Lambda service.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fmops_local.deploy import REPO_ROOT, load_template


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # e.g. /approvals/{run_id}/approve
    function: str  # logical id
    pattern: re.Pattern[str]


def route(method: str, resource: str, function: str) -> Route:
    regex = "^" + re.sub(r"\{(\w+)\+?\}", r"(?P<\1>[^/]+)", resource) + "/?$"
    return Route(method.upper(), resource, function, re.compile(regex))


def routes_from_template(path: Path | None = None) -> list[Route]:
    template = load_template(path or REPO_ROOT / "template.yaml")
    routes = []
    for logical_id, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (res.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            routes.append(route(event["Properties"]["Method"], event["Properties"]["Path"], logical_id))
    return routes


class SignatureError(Exception):
    """The request is not signed with known credentials."""


def verify_sigv4(
    method: str, url: str, headers: dict[str, str], body: bytes, secrets: dict[str, str], region: str
) -> str:
    """Check a SigV4 ``Authorization`` header; returns the access key id it was made with."""
    auth = headers.get("authorization", "")
    match = re.match(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([^,]+), Signature=([0-9a-f]+)",
        auth,
    )
    if not match:
        raise SignatureError("Missing Authentication Token")
    access_key, _date, sig_region, service, signed, signature = match.groups()
    secret = secrets.get(access_key)
    if secret is None or service != "execute-api" or sig_region != region:
        raise SignatureError("The security token included in the request is invalid.")
    names = signed.split(";")
    request = AWSRequest(method=method, url=url, data=body, headers={n: headers.get(n, "") for n in names})
    request.context["timestamp"] = headers.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(access_key, secret, headers.get("x-amz-security-token")), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != signature:
        raise SignatureError("The request signature we calculated does not match the signature you provided.")
    return access_key


class ApiFront:
    """Serves the template's API routes on 127.0.0.1 through the local Lambda service."""

    def __init__(
        self,
        invoke: Callable[[str, dict[str, Any]], dict[str, Any]],
        function_names: dict[str, str],
        secrets: dict[str, str],
        identities: dict[str, str],
        region: str,
        account: str,
        stage: str = "dev",
        port: int = 0,
        routes: list[Route] | None = None,
    ) -> None:
        self.routes = routes if routes is not None else routes_from_template()
        self._invoke = invoke
        self._names = function_names
        self._secrets = secrets
        self._identities = identities
        self.region, self.account, self.stage = region, account, stage
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.stage}"

    def start(self) -> ApiFront:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fmops-api-front")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, host: str
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(raw_path)
        path = split.path
        prefix = f"/{self.stage}"
        if not path.startswith(prefix + "/"):
            return _json(404, {"message": f"no stage in path; use {prefix}/..."})
        resource_path = path[len(prefix) :]
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            access_key = verify_sigv4(method, f"http://{host}{raw_path}", lowered, body, self._secrets, self.region)
        except SignatureError as exc:
            return _json(403, {"message": str(exc)})
        for route in self.routes:
            m = route.pattern.match(resource_path)
            if m and route.method == method:
                break
        else:
            return _json(
                404 if not any(r.pattern.match(resource_path) for r in self.routes) else 405,
                {"message": f"no route for {method} {resource_path}"},
            )
        user_arn = self._identities.get(access_key, f"arn:aws:iam::{self.account}:user/{access_key}")
        query = {k: v[-1] for k, v in parse_qs(split.query).items()} or None
        event = {
            "resource": route.resource,
            "path": resource_path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": dict(parse_qs(split.query).items()) or None,
            "pathParameters": m.groupdict() or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.resource,
                "httpMethod": method,
                "path": path,
                "stage": self.stage,
                "accountId": self.account,
                "requestId": str(uuid.uuid4()),
                "identity": {
                    "accessKey": access_key,
                    "accountId": self.account,
                    "caller": access_key,
                    "user": access_key,
                    "userArn": user_arn,
                    "sourceIp": "127.0.0.1",
                },
            },
            "body": body.decode() if body else None,
            "isBase64Encoded": False,
        }
        result = self._invoke(self._names[route.function], event)
        if "statusCode" not in result:
            return _json(502, {"message": "Internal server error"})
        out_headers = dict(result.get("headers") or {})
        out_body = result.get("body") or ""
        return int(result["statusCode"]), out_headers, out_body.encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = front.handle(
                    self.command, self.path, dict(self.headers.items()), body, self.headers.get("Host", "")
                )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler


def _json(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()
