"""Rendering a template into subject, plain text and HTML; no I/O.

Bodies are files in ``templates/`` (HTML autoescaped). Subjects and opening paragraphs
are short Jinja texts, the organisation's own when it overrides them: those run in a
sandbox and fall back to the defaults if they fail, so an organisation's typo can never
stop the change that sends the email.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from tenants.errors import FieldProblem, InvalidInputError
from tenants.mail.catalogue import TEMPLATES, MailTemplate
from tenants.text import counted

log = logging.getLogger(__name__)

_files = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Subjects and openings are plain text; the HTML body escapes them where it shows them.
_texts = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
# "{{ count|counted('item') }}": "1 item", "3 items", as on the console's pages.
_files.filters["counted"] = counted
_texts.filters["counted"] = counted

MAX_SUBJECT = 300
MAX_INTRO = 2000


@dataclass(frozen=True, slots=True)
class Override:
    """An organisation's own subject and opening paragraph (None: the default)."""

    subject: str | None = None
    intro: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def template(name: str) -> MailTemplate:
    """The template called ``name``; ValueError for an unknown one (a programming error)."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"there is no mail template {name!r}") from None


def _line(text: str) -> str:
    """A header-safe subject: one line, no control characters."""
    return " ".join(text.split())[:MAX_SUBJECT]


def _short(source: str, context: Mapping[str, Any]) -> str:
    return _texts.from_string(source).render(context)


def render(
    name: str,
    context: Mapping[str, Any],
    *,
    organisation: str,
    link: str | None = None,
    override: Override | None = None,
) -> Rendered:
    """The email ``name`` for ``context`` in an organisation's name.

    Raises ValueError when the caller left out a required key (a programming error, so
    the change that wanted the email fails in tests rather than sending a broken one).
    """
    spec = template(name)
    missing = [k for k in spec.required if k not in context]
    if missing:
        raise ValueError(f"mail template {name!r} needs {', '.join(missing)} in its context")
    values: dict[str, Any] = {**context, "organisation": organisation}
    if link is not None:
        values["link"] = link
    values["greeting_name"] = str(context[spec.greeting]) if spec.greeting else ""
    subject = _short(spec.subject, values)
    intro = _short(spec.intro, values)
    if override is not None:
        try:
            if override.subject:
                subject = _short(override.subject, values)
            if override.intro:
                intro = _short(override.intro, values)
        except TemplateError as exc:
            log.warning("the override of mail template %s failed (%s); using the default",
                        name, exc)
            subject, intro = _short(spec.subject, values), _short(spec.intro, values)
    values.update(subject=_line(subject), intro=intro.strip())
    return Rendered(
        subject=_line(subject),
        text=_files.get_template(f"{name}.txt").render(values),
        html=_files.get_template(f"{name}.html").render(values),
    )


def sample_context(name: str) -> dict[str, Any]:
    """Placeholder values for every required key (previews and checking overrides)."""
    return {key: f"[{key.replace('_', ' ')}]" for key in template(name).required}


def check_override(name: str, override: Override) -> None:
    """InvalidInputError naming ``subject`` or ``intro`` when an override cannot render
    (unknown placeholder, bad syntax, too long) with the template's context."""
    spec = template(name)
    values = {**sample_context(name), "organisation": "[organisation]"}
    problems = []
    for field, text, limit in (
        ("subject", override.subject, MAX_SUBJECT),
        ("intro", override.intro, MAX_INTRO),
    ):
        if text is None:
            continue
        if len(text) > limit:
            problems.append(FieldProblem(field, f"at most {limit} characters"))
            continue
        try:
            _short(text, values)
        except TemplateError as exc:
            known = ", ".join(["organisation", *spec.required])
            problems.append(FieldProblem(field, f"{exc.message or exc}; placeholders: {known}"))
    if problems:
        raise InvalidInputError(f"the text for the {spec.title} email cannot be used",
                                fields=problems)
