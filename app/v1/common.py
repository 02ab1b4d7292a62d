"""Schema pieces shared by the /v1 resources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    JsonValue,
    StringConstraints,
    UrlConstraints,
)
from pydantic_core import core_schema

from app import rfc3339
from tenants import text
from tenants.pagination import MAX_LIMIT

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TextPolicy:
    """The service's one text policy (``tenants.text``) on a field: its check after the
    field's own, and its rule stated in the API document as the field's ``pattern``
    (unless the field states one of its own), so a client generating input from the
    document sends what the service takes."""

    free: bool

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        check = text.clean_free_text if self.free else text.clean_name
        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        json_schema = handler(schema)
        if json_schema.get("type") == "string" and "pattern" not in json_schema:
            json_schema["pattern"] = text.FREE_TEXT_PATTERN if self.free else text.NAME_PATTERN
        return json_schema


#: Append one to the ``Annotated`` of every field that holds a name or label (NAME) or free
#: text (FREE_TEXT).
NAME = TextPolicy(free=False)
FREE_TEXT = TextPolicy(free=True)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NAME]
Text = Annotated[str, StringConstraints(max_length=5000), FREE_TEXT]


def _storable(value: datetime) -> datetime:
    """A time PostgreSQL can compare with: in UTC it must still fall in years 1 to 9999."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


def _rfc3339_text(value: object) -> object:
    """Text read as an RFC 3339 date-time, the documented format (``app.rfc3339``):
    pydantic would also take a Unix timestamp written as text ("1765000000"), or any of
    ISO 8601's other spellings, in a query string or a JSON body. The text is parsed here,
    since a strictly validated body takes no text after this step."""
    if isinstance(value, str):
        return rfc3339.parse_datetime(value)
    return value


#: A moment as the API takes one: RFC 3339 text with a zone, within what PostgreSQL holds.
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_storable)]


def _full_date_text(value: object) -> object:
    """Text read as a date ``YYYY-MM-DD`` (RFC 3339 ``full-date``), the documented format:
    pydantic would also read digits as a Unix timestamp ("1796774400" was 2026-12-09),
    and a number in a JSON body too."""
    if isinstance(value, str):
        return rfc3339.parse_date(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError(rfc3339.DATE_EXPECTED)


#: A day as the API takes one: ``YYYY-MM-DD`` and nothing else.
Day = Annotated[date, BeforeValidator(_full_date_text)]


#: An integer every JSON reader holds exactly (I-JSON, RFC 7493: within +-(2**53 - 1)); a
#: larger one reached the JSON encoder of a stored definition, which took 64 bits at most.
JsonInt = Annotated[int, Field(ge=-(2**53 - 1), le=2**53 - 1)]

SettingKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]
#: What a setting can hold: checked against the setting's type by the catalogue.
SettingValue = (
    bool
    | JsonInt
    | Annotated[str, StringConstraints(max_length=500), NAME]
    | list[Annotated[str, StringConstraints(max_length=200), NAME]]
)


@dataclass(frozen=True, slots=True)
class StoredUrl:
    """``Annotated[AnyHttpUrl, StoredUrl(n)]``: an http(s) URL for a column of ``n``
    characters. The length is checked on the input (and declared in the document), and
    again as stored, after the host's punycode, which can lengthen it; the host must be one
    a resolver can look up (no empty label, none over 63 characters). Without these, such
    a URL was refused by the column (a 500) or saved and then failed every request made to
    it in the resolver's codec."""

    max_length: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        url = handler.generate_schema(
            Annotated[AnyHttpUrl, UrlConstraints(max_length=self.max_length)]
        )
        return core_schema.no_info_after_validator_function(self._stored, url)

    def _stored(self, url: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(url)) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters as stored")
        try:
            (url.host or "").encode("idna")
        except UnicodeError:
            raise ValueError(
                "the host name has an empty label or one longer than 63 characters"
            ) from None
        return url


#: The count of members a change takes sign-in from, as its preview answered it: the
#: confirmation an identity change, a restore and a domain's removal each ask for.
ConfirmLosing = Annotated[int | None, Field(ge=0, le=10_000_000)]


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


def sort_param(default: str, fields: Sequence[str]) -> Any:
    """A list's ``sort`` query parameter: one of ``fields``, with ``-`` before it for
    descending (what ``tenants.pagination.Sort.parse`` takes from the same ``fields``). The
    choices are in the API document as an enum, so a client that builds requests from the
    document sends one; anything else is refused naming ``sort``."""
    choices: list[JsonValue] = [f"{sign}{name}" for name in fields for sign in ("", "-")]
    return Field(
        default,
        description=f"One of {', '.join(fields)}; prefix - for descending.",
        json_schema_extra={"enum": choices},
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last."
    )
