"""The OpenAPI document as clients need it: every operation documents its errors.

Every error quantdesk returns is an RFC 7807 problem (``platform/errors.py``), so every
operation gets the shared ``Problem`` schema as its ``default`` response, added once here
rather than repeated on each router; a generated client then parses any error into one type.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from quantdesk.platform.errors import PROBLEM_CONTENT_TYPE


class Problem(BaseModel):
    """An RFC 7807 problem; extension members (e.g. ``errors``, ``dependency``) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:quantdesk:problem:not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DEFAULT = {
    "description": "An RFC 7807 problem (application/problem+json)",
    "content": {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}},
}
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def install_problem_responses(app: FastAPI) -> None:
    """Wrap FastAPI's document builder: ``Problem`` becomes every operation's default."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for path in document.get("paths", {}).values():
            for method, operation in path.items():
                if method in _METHODS:
                    operation.setdefault("responses", {}).setdefault("default", _DEFAULT)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
