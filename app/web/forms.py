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
from starlette.exceptions import HTTPException
from starlette.requests import Request

from tenants.errors import FieldProblem, InvalidInputError

#: A urlencoded form's body at most: the console's forms are short text (a CSV import is
#: an upload, multipart, within Starlette's limit of 1 MB per part).
MAX_FORM_BYTES = 1024 * 1024
#: Fields in one form at most (a bulk action over a page of 500 members sends 500 ticks).
MAX_FIELDS = 1000

URLENCODED = "application/x-www-form-urlencoded"


def too_large(reason: str) -> InvalidInputError:
    return InvalidInputError(
        "the form is larger than any form here", fields=[FieldProblem("form", reason)]
    )


async def read_form(request: Request) -> tuple[FormData, list[FieldProblem]]:
    """The posted form, and a problem for each field whose text is not UTF-8 (its value
    read as empty, so that nothing of it is kept). The form is also what
    ``request.form()`` returns afterwards. Raises InvalidInputError naming ``form`` when
    the body is over ``MAX_FORM_BYTES`` or ``MAX_FIELDS``."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != URLENCODED:
        try:
            return await request.form(max_fields=MAX_FIELDS), []
        except HTTPException as exc:  # Starlette's answer to a multipart over its limits
            raise too_large(str(exc.detail)) from None
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
