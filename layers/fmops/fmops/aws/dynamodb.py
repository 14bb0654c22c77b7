"""Amazon DynamoDB: the runs table and the approvals table (partition key ``run_id`` on both)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fmops.aws._base import AwsService, error_code, translate, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON-like dict -> DynamoDB attribute values (None values dropped)."""
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    return {k: ser.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values -> plain JSON-like dict."""
    from boto3.dynamodb.types import TypeDeserializer

    de = TypeDeserializer()
    return {k: _from_dynamo(de.deserialize(v)) for k, v in item.items()}


class Table(AwsService):
    """A table whose partition key is ``run_id`` (string)."""

    service_name = "dynamodb"
    key_name = "run_id"

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def _key(self, key: str) -> dict[str, Any]:
        return {self.key_name: {"S": key}}

    def get(self, key: str) -> dict[str, Any] | None:
        """The item, or None.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        with translate_errors(f"GetItem {self.table_name}"):
            response = self.client.get_item(TableName=self.table_name, Key=self._key(key), ConsistentRead=True)
        item = response.get("Item")
        return deserialize(item) if item else None

    def put(self, item: dict[str, Any], only_if_absent: bool = False) -> bool:
        """Write an item; with ``only_if_absent`` returns False (writing nothing) when the key exists.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"TableName": self.table_name, "Item": serialize(item)}
        if only_if_absent:
            kwargs["ConditionExpression"] = "attribute_not_exists(#k)"
            kwargs["ExpressionAttributeNames"] = {"#k": self.key_name}
        try:
            self.client.put_item(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, f"PutItem {self.table_name}") from exc
        return True

    def update(self, key: str, fields: dict[str, Any]) -> None:
        """Set ``fields`` on the item (creating it if needed); None values are skipped.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        values = {k: v for k, v in fields.items() if v is not None and k != self.key_name}
        if not values:
            return
        names = {f"#f{i}": name for i, name in enumerate(values)}
        attr_values = serialize({f":v{i}": value for i, value in enumerate(values.values())})
        expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values)))
        with translate_errors(f"UpdateItem {self.table_name}"):
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attr_values,
            )

    def delete(self, key: str, only_if_exists: bool = False) -> bool:
        """Delete the item; with ``only_if_exists`` returns False when there was none (conditional delete).

        Raises:
            TransientAwsError, AwsRequestError.
        """
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"TableName": self.table_name, "Key": self._key(key)}
        if only_if_exists:
            kwargs["ConditionExpression"] = "attribute_exists(#k)"
            kwargs["ExpressionAttributeNames"] = {"#k": self.key_name}
        try:
            self.client.delete_item(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, f"DeleteItem {self.table_name}") from exc
        return True

    def scan(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to ``limit`` items (small tables: pending approvals).

        Raises:
            TransientAwsError, AwsRequestError.
        """
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        with translate_errors(f"Scan {self.table_name}"):
            while len(items) < limit:
                response = self.client.scan(**kwargs)
                items.extend(deserialize(item) for item in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items[:limit]
