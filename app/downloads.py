"""Downloads: how one is named to the browser (``Content-Disposition``, RFC 6266), and a
streamed one's answer to HEAD."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


def attachment(filename: str) -> str:
    """The ``Content-Disposition`` of a download saved as ``filename``.

    A name may carry what someone typed (the members export is named after its filters):
    control characters, path separators, quotes and backslashes become ``_``, every
    client gets an ASCII ``filename``, and a name with more than ASCII also goes as UTF-8
    in ``filename*`` (RFC 8187), which browsers prefer. A header value is Latin-1 on the
    wire, so the name as typed never reaches it (a Greek search once made the export a
    500)."""
    safe = "".join(
        "_" if c in '"\\/' or unicodedata.category(c).startswith("C") else c for c in filename
    )
    plain = "".join(c if c.isascii() else "_" for c in safe)
    if plain == safe:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(safe, safe='')}"


class StreamedDownload(StreamingResponse):
    """A streamed download (an export) that answers HEAD with its headers alone: Starlette
    runs a streaming body for HEAD too, so every HEAD of an export read the whole of it
    from the database only for the server to drop it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()  # never started: nothing is read
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await super().__call__(scope, receive, send)
