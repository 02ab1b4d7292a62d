"""The emails Tenantry sends, and each organisation's own wording of their subject and
opening paragraph (``tenants.mail``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import FREE_TEXT, NAME, Input, Output
from tenants.mail import service as mail
from tenants.mail.catalogue import TEMPLATES
from tenants.permissions import Permission

router = ApiRouter("/v1/mail-templates", "email")

TemplateName = Literal[tuple(TEMPLATES)]  # type: ignore[valid-type]


class TemplateOut(Output):
    name: str
    title: str
    default_subject: str
    default_intro: str
    subject: str | None = Field(description="The organisation's own subject; null: the default.")
    intro: str | None = Field(description="The organisation's own opening; null: the default.")
    placeholders: list[str] = Field(description="What {{ name }} may stand for in the texts.")


class TemplatesOut(Output):
    organisation_id: uuid.UUID
    templates: list[TemplateOut]


class TemplateBody(Input):
    template: TemplateName  # type: ignore[valid-type]
    subject: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), NAME] | None
    ) = None
    intro: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), FREE_TEXT] | None
    ) = None


async def _templates() -> list[TemplateOut]:
    from tenants.mail.models import MailTemplateOverride

    overrides = {o.template: o for o in await MailTemplateOverride.all()}
    return [
        TemplateOut(
            name=t.name,
            title=t.title,
            default_subject=t.subject,
            default_intro=t.intro,
            subject=overrides[t.name].subject if t.name in overrides else None,
            intro=overrides[t.name].intro if t.name in overrides else None,
            placeholders=["organisation", *t.required],
        )
        for t in TEMPLATES.values()
    ]


@router.get(
    "",
    summary="List the emails Tenantry sends, with the organisation's own wording",
    permission=Permission.ORGANISATION_READ,
    response=TemplatesOut,
)
async def list_mail_templates(call: Call[Input, Input]) -> TemplatesOut:
    return TemplatesOut(organisation_id=call.principal.org_id, templates=await _templates())


@router.put(
    "",
    summary="Word an email's subject or opening in the organisation's own way",
    permission=Permission.ORGANISATION_WRITE,
    body=TemplateBody,
    response=TemplateOut,
    errors=(422,),
)
async def set_mail_template(call: Call[TemplateBody, Input]) -> TemplateOut:
    """Texts are Jinja with the template's placeholders (``{{ organisation }}``); one that
    cannot render is refused naming the field. Empty or null for both: the defaults again."""
    b = call.body
    await mail.set_override(b.template, subject=b.subject, intro=b.intro, actor=call.actor)
    return next(t for t in await _templates() if t.name == b.template)
