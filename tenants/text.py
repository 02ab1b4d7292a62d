"""The one text policy for every name and free-text value the service stores; plain Python.

Names and notes are shown back in the console, on the account page and in the audit log.
A value that holds a control character or a bidirectional override can make those pages
lie about what they show (``U+202E`` turns ``txt.exe`` into ``exe.txt`` on screen), and a
lone UTF-16 surrogate or a NUL cannot even be stored in PostgreSQL. So every edge (the
``/v1`` models, console forms, SCIM bodies, the CLI) passes text through here:

- valid Unicode only: no lone surrogates (``\\ud800``), no NUL;
- no C0 or C1 control characters (U+0000-U+001F, U+007F-U+009F); free text may keep
  line breaks and tabs, and a carriage return is turned into a line break;
- no bidirectional embedding, override or isolate characters (U+202A-U+202E,
  U+2066-U+2069) in names; free text may hold the embeddings and isolates that mixed
  right-to-left writing uses, but not the overrides (U+202D, U+202E), which show what
  follows them reversed (an officer read a member's "evil" as "live");
- a name or free text has at least one visible character when it has any (``\u200b``
  alone is not one; spaces alone are left to the field's own emptiness rule);
- normalised to NFC, so the same name typed on two systems is the same string.

Each check returns the cleaned text or raises :class:`TextError` with a reason written for
the person who sent it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from tenants.errors import FieldProblem, InvalidInputError

#: Embedding, override and isolate controls (Unicode UAX #9 §2.1, §2.4, §2.7).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Control characters free text may keep.
FREE_TEXT_CONTROLS = frozenset("\n\t")
#: The overrides, which no text needs: they reorder what follows on screen.
BIDI_OVERRIDES = frozenset("\u202d\u202e")


#: Characters that show nothing: spaces, and the zero-width, format and filler characters
#: (``MARKS``). A name made of these alone, one mark at least, is a name nobody can see,
#: read or pick from a list. (Spaces alone are an empty name, which the fields' own
#: stripping and minimum length refuse as such.)
SPACES = r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
MARKS = (
    r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2060-\u2064"
    r"\u206a-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0"
)
INVISIBLE_ONLY = f"[{SPACES}{MARKS}]*[{MARKS}][{SPACES}{MARKS}]*"
_INVISIBLE_ONLY = re.compile(INVISIBLE_ONLY)
#: The same for free text, whose line breaks and tabs show nothing either: a reason, a note
#: or a justification of zero-width spaces reached its reader as an empty box.
FREE_INVISIBLE_ONLY = f"[{SPACES}{MARKS}\n\t]*[{MARKS}][{SPACES}{MARKS}\n\t]*"
_FREE_INVISIBLE_ONLY = re.compile(FREE_INVISIBLE_ONLY)

#: The policy as regular expressions (JSON Schema's ``pattern``, ECMA-262 and Python alike),
#: for the API document: a client generating input from it sends what the service takes.
#: Lone surrogates are not expressible there; ``problem`` still refuses them. A property
#: test holds each pattern to ``problem`` (tests/tenants/test_text.py).
NAME_PATTERN = (
    rf"^(?!{INVISIBLE_ONLY}$)[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$"
)
#: Free text may hold tabs and line breaks (a carriage return becomes a line break).
FREE_TEXT_PATTERN = (
    rf"^(?!{FREE_INVISIBLE_ONLY}$)"
    r"[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202d\u202e]*$"
)


class TextError(ValueError):
    """The text breaks the policy; the message says how, for the person who sent it."""


def is_control(char: str) -> bool:
    """C0 (U+0000-U+001F), DEL and C1 (U+0080-U+009F)."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def is_surrogate(char: str) -> bool:
    return 0xD800 <= ord(char) <= 0xDFFF


def problem(text: str, *, free: bool = False) -> str | None:
    """Why ``text`` may not be stored as a name (``free``: as free text); None when it may."""
    for char in text:
        if is_surrogate(char):
            return f"contains a lone UTF-16 surrogate (U+{ord(char):04X}), which is not text"
        if char == "\x00":
            return "contains a NUL character (U+0000), which cannot be stored"
        if is_control(char) and not (free and char in FREE_TEXT_CONTROLS):
            return f"contains the control character U+{ord(char):04X}"
        if char in BIDI_CONTROLS and (not free or char in BIDI_OVERRIDES):
            return f"contains the bidirectional control character U+{ord(char):04X}"
    if (_FREE_INVISIBLE_ONLY if free else _INVISIBLE_ONLY).fullmatch(text):
        return "has no visible character (only spaces, zero-width or format characters)"
    return None


def clean(text: str, *, free: bool = False) -> str:
    """``text`` normalised to NFC; TextError if it breaks the policy.

    In free text a carriage return (alone or before a line break, as browsers send form
    fields) becomes one line break before the check.
    """
    if free:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    reason = problem(text, free=free)
    if reason is not None:
        raise TextError(reason)
    return unicodedata.normalize("NFC", text)


def clean_name(text: str) -> str:
    """A name or a label (a member's name, a unit, a group, an external id)."""
    return clean(text)


def clean_free_text(text: str) -> str:
    """Free text (a reason, a description, a message)."""
    return clean(text, free=True)


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: empty, or only spaces, line breaks and zero-width,
    format or filler characters (a message of "\u200b" says nothing either)."""
    stripped = text.strip()
    return not stripped or _INVISIBLE_ONLY.fullmatch(stripped) is not None


def is_storable(text: str) -> bool:
    """Whether PostgreSQL can hold ``text`` at all: no lone surrogate and no NUL.

    For values that are compared rather than shown (a cursor's position, a filter's
    operand), where the stricter name policy would refuse what an old row legitimately holds.
    """
    return not any(char == "\x00" or is_surrogate(char) for char in text)


def check_lengths(changes: Mapping[str, object], limits: Mapping[str, int]) -> None:
    """``check_length`` for each text field of ``changes`` that ``limits`` bounds (named by
    its field, underscores as spaces): the first past its limit is refused."""
    for name, limit in limits.items():
        value = changes.get(name)
        if isinstance(value, str):
            check_length(value, limit, field=name, what=name.replace("_", " "))


def check_length(value: str | None, limit: int, *, field: str, what: str) -> None:
    """Refuse ``value`` when it holds more than ``limit`` characters: InvalidInputError
    naming ``field``, never a silently shortened value. ``limit`` is the domain's one
    limit for the field (declared beside the rule that uses it), so the API, the console
    and any other edge give the same refusal. None and short values pass."""
    if value is not None and len(value) > limit:
        raise InvalidInputError(
            f"the {what} is too long",
            fields=[FieldProblem(field, f"has more than {limit} characters")],
        )


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it takes, as a sentence reads it: "1 member",
    "2 members", "0 members" (never "member(s)"). ``plural`` is the irregular plural
    ("1 legal hold", "2 people" with ``plural="people"``); by default an "s" is added.
    The verb that follows is the caller's: singular only when ``n == 1``."""
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {plural if plural is not None else noun + 's'}"
