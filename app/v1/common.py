"""Schema pieces shared by the /v1 resources."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from tenants import text
from tenants.pagination import MAX_LIMIT

T = TypeVar("T")

#: The service's one text policy (``tenants.text``) as pydantic validators: append one to the
#: ``Annotated`` of every field that holds a name or label (NAME) or free text (FREE_TEXT).
NAME = AfterValidator(text.clean_name)
FREE_TEXT = AfterValidator(text.clean_free_text)

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NAME
]
Text = Annotated[str, StringConstraints(max_length=5000), FREE_TEXT]


class Input(BaseModel):
    """Request bodies: unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def absent() -> Any:
    """Default for PATCH fields: not sent. Unlike ``= None`` it keeps null out of the
    schema for fields that cannot be cleared, so sending null is refused."""
    return None


def changes_of(model: BaseModel) -> dict[str, Any]:
    """The fields the client actually sent in a PATCH body."""
    return {name: getattr(model, name) for name in model.model_fields_set}


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: Annotated[str, StringConstraints(max_length=4000)] | None = Field(
        None, description="Continue after the page that returned this cursor."
    )
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="Items per page.")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last."
    )
