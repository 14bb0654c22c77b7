"""Shared plumbing: lazy clients and ClientError -> domain error translation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fmops.errors import AwsRequestError, FmopsError, TransientAwsError

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionInProgressException",
    }
)


def make_client(service: str) -> Any:
    """``boto3.client(service)``; boto3 itself honours AWS_ENDPOINT_URL and the region variables."""
    import boto3

    return boto3.client(service)  # type: ignore[call-overload]


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    """The AWS error message of a botocore ClientError (str(exc) otherwise)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = response.get("Error", {}).get("Message")
        if message:
            return str(message)
    return str(exc)


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx or a connection problem."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(exc) in TRANSIENT_CODES or status >= 500
    return False


def translate(exc: BaseException, action: str) -> FmopsError:
    """The domain error for a botocore ClientError: TransientAwsError or AwsRequestError."""
    code = error_code(exc)
    if is_transient(exc):
        return TransientAwsError(f"{action}: {code}: {error_message(exc)}")
    return AwsRequestError(f"{action}: {code}: {error_message(exc)}", code=code)


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn botocore errors raised inside the block into TransientAwsError or AwsRequestError."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except ClientError as exc:
        raise translate(exc, action) from exc
    except (ConnectionError, HTTPClientError) as exc:
        raise TransientAwsError(f"{action}: {exc}") from exc
    except BotoCoreError as exc:
        raise AwsRequestError(f"{action}: {exc}") from exc


class AwsService:
    """Base of the wrappers: holds the (lazily created) client."""

    service_name = ""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.service_name)
        return self._client
