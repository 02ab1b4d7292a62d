"""How a download is named to the browser (``Content-Disposition``, RFC 6266)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote


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
