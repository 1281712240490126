"""The base of every request body: unknown fields refused, and text that can be stored.

JSON allows ``\\u0000`` and unpaired surrogates such as ``\\ud800`` in strings; neither
can be stored in PostgreSQL or sent in mail. They are refused here, with the envelope's
``invalid_value``, before any route sees them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from postwire_common.text import unstorable


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if unstorable(data):
            raise ValueError("text must not contain NUL characters or unpaired surrogates")
        return data
