"""Reading a posted form: strictly, within limits, the same way for every page.

Starlette's parser reads a urlencoded field whose percent-escapes are not UTF-8 as U+FFFD
(so ``%FF`` was saved as a group named "�") and raw bytes as Latin-1, and its limits (a
field over 1 MB, more than 1,000 fields) end in an HTTP 400 that our handler answered as a
500. Here a field that is not UTF-8 is named as such and refused with the rest of the
form's problems, and a form over the limits is refused whole, before anything else.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from tenants.errors import FieldProblem, InvalidInputError

#: A urlencoded form's body at most: the console's forms are short text (a CSV import is
#: pasted into a text area; larger files go through the API).
MAX_FORM_BYTES = 1024 * 1024
#: Fields in one form at most (a bulk action over a page of 500 members sends 500 ticks).
MAX_FIELDS = 1000

URLENCODED = "application/x-www-form-urlencoded"


class UnreadableForm(InvalidInputError):
    """A form refused whole, before any field is read: larger than any form here (413), or
    not sent as every form here is sent (415). ``heading`` and ``status`` are the page's."""

    def __init__(self, message: str, reason: str, *, heading: str, status: int) -> None:
        super().__init__(message, fields=[FieldProblem("form", reason)])
        self.heading = heading
        self.status = status


def too_large(reason: str) -> UnreadableForm:
    return UnreadableForm(
        "the form is larger than any form here", reason, heading="Form too large", status=413
    )


async def read_form(request: Request) -> tuple[FormData, list[FieldProblem]]:
    """The posted form, and a problem for each field whose text is not UTF-8 (its value
    read as empty, so that nothing of it is kept). The form is also what
    ``request.form()`` returns afterwards. Raises ``UnreadableForm`` when the body is over
    ``MAX_FORM_BYTES`` or ``MAX_FIELDS``, or not urlencoded."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in (URLENCODED, ""):  # no type: a form sent empty (a bare button)
        # Every form here is urlencoded (none uploads a file). Starlette would read the
        # text of a multipart form that is not UTF-8 as Latin-1 and keep it garbled.
        raise UnreadableForm(
            "the form was not sent as a browser sends the forms here",
            f"is sent as {media}, not {URLENCODED}",
            heading="Form not readable",
            status=415,
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise too_large(f"is over {MAX_FORM_BYTES // 1024 // 1024} MB")
    pairs, problems = parse_urlencoded(bytes(body))
    form = FormData(pairs)
    request._form = form  # what request.form() gives the handlers that read lists
    return form, problems


def parse_urlencoded(
    body: bytes,
) -> tuple[list[tuple[str, str | UploadFile]], list[FieldProblem]]:
    """``name=value&…`` as a browser sends it (``+`` for a space, UTF-8 percent-escaped);
    a name or value that is not UTF-8 is a problem, never a replacement character.
    Raises InvalidInputError naming ``form`` beyond ``MAX_FIELDS`` fields."""
    pairs: list[tuple[str, str | UploadFile]] = []
    problems: list[FieldProblem] = []
    for chunk in body.split(b"&"):
        if not chunk:
            continue
        raw_name, _, raw_value = chunk.partition(b"=")
        name, value = _text(raw_name), _text(raw_value)
        if name is None:
            problems.append(FieldProblem("form", "has a field name that is not UTF-8 text"))
            continue
        if value is None:
            problems.append(FieldProblem(name, "is not UTF-8 text"))
            value = ""
        pairs.append((name, value))
        if len(pairs) > MAX_FIELDS:
            raise too_large(f"has more than {MAX_FIELDS} fields")
    return pairs, problems


def _text(raw: bytes) -> str | None:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return None
