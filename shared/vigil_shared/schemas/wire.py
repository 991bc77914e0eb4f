"""The compatibility rule of every topic: producers are strict, consumers are tolerant.

An additive change (a new optional field) keeps a topic's name and version (docs/topics.md). That
promise holds only if a consumer written against the older schema accepts a newer producer's
messages, so:

- producers build messages from the model, which forbids unknown fields (a typo is an error
  where it is made, not a field nobody reads);
- consumers read with ``read``/``read_json``, which ignore fields they do not know, at every
  level of the message, so a new field never sends a message to a dead-letter topic;
- the published JSON Schema allows additional properties, so a downstream consumer that
  validates against it follows the same rule.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict

Schema = dict[str, Any]


class WireMessage(BaseModel):
    """Base of the messages on Kafka topics (see the module docstring for the rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def read(cls, data: Any) -> Self:
        """A consumer's read of a decoded message: unknown fields are ignored."""
        return cls.model_validate(data, extra="ignore")

    @classmethod
    def read_json(cls, raw: bytes | str) -> Self:
        """A consumer's read of a JSON message: unknown fields are ignored."""
        return cls.model_validate_json(raw, extra="ignore")

    @classmethod
    def published_schema(cls) -> Schema:
        """The JSON Schema downstream consumers validate against: open to additional fields."""
        opened: Schema = allow_additional_properties(
            cls.model_json_schema(by_alias=True, mode="serialization")
        )
        return opened


def allow_additional_properties(node: Any) -> Any:
    """``node`` without ``additionalProperties: false`` anywhere (the model's ``forbid`` is for
    producers only)."""
    if isinstance(node, dict):
        return {
            key: allow_additional_properties(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [allow_additional_properties(value) for value in node]
    return node
