"""A client for the fmops REST API (IAM auth): every request is SigV4-signed for ``execute-api``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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
