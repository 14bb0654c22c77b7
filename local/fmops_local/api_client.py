"""A client for the fmops REST API (IAM auth): every request is SigV4-signed for ``execute-api``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


class ApiError(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass
class ApiClient:
    base_url: str
    region: str = "us-east-1"
    session: Any = None
    timeout: float = 30

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.base_url.rstrip("/") + path
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        credentials = (self.session or boto3.Session()).get_credentials()
        if credentials is None:
            raise ApiError(0, "no AWS credentials found to sign the request")
        aws_request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(aws_request)
        resp = requests.request(method, url, data=data, headers=dict(aws_request.headers.items()), timeout=self.timeout)
        payload: Any
        try:
            payload = resp.json()
        except ValueError:
            payload = {"message": resp.text}
        if resp.status_code >= 400:
            message = payload.get("message") if isinstance(payload, dict) else str(payload)
            raise ApiError(resp.status_code, str(message))
        return payload

    def approvals(self) -> Any:
        return self.request("GET", "/approvals")

    def approval(self, run_id: str) -> Any:
        return self.request("GET", f"/approvals/{run_id}")

    def run(self, run_id: str) -> Any:
        return self.request("GET", f"/runs/{run_id}")

    def decide(self, run_id: str, decision: str, reason: str) -> Any:
        if decision not in ("approve", "reject"):
            raise ValueError("decision must be approve or reject")
        return self.request("POST", f"/approvals/{run_id}/{decision}", {"reason": reason})

    # Model registry: one model package group per use case.

    def models(self, group: str) -> Any:
        """GET /models/{group}: the group's versions, newest first."""
        return self.request("GET", f"/models/{quote(group, safe='')}")

    def model(self, group: str, version: int) -> Any:
        """GET /models/{group}/{version}: status, metadata, metrics, inference spec, approval history."""
        return self.request("GET", f"/models/{quote(group, safe='')}/{int(version)}")

    def model_lineage(self, group: str, version: int) -> Any:
        """GET /models/{group}/{version}/lineage."""
        return self.request("GET", f"/models/{quote(group, safe='')}/{int(version)}/lineage")

    def compare_models(self, group: str, versions: Sequence[int]) -> Any:
        """GET /models/{group}/compare?versions=1,2,...: metrics side by side and paired tests."""
        query = urlencode({"versions": ",".join(str(int(v)) for v in versions)})
        return self.request("GET", f"/models/{quote(group, safe='')}/compare?{query}")

    def decide_model(self, group: str, version: int, decision: str, reason: str) -> Any:
        """POST /models/{group}/{version}/approve|reject with ``{"reason": ...}``."""
        if decision not in ("approve", "reject"):
            raise ValueError("decision must be approve or reject")
        return self.request("POST", f"/models/{quote(group, safe='')}/{int(version)}/{decision}", {"reason": reason})
