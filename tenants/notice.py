"""The plain-language notice of what an organisation can control and access (the five
points of the end-user notice this product implements). Used by the account page and,
later, by products that show it in their own UI."""

from __future__ import annotations

from dataclasses import dataclass

from tenants.organisations.models import Organisation, OrganisationKind


@dataclass(frozen=True, slots=True)
class NoticePoint:
    key: str
    heading: str
    text: str


def organisation_notice(org: Organisation) -> list[NoticePoint]:
    """What ``org`` can do with this account, addressed to the member."""
    name = org.name
    place = "school" if org.kind == OrganisationKind.SCHOOL else "employer"
    return [
        NoticePoint(
            "control",
            f"{name} manages this account",
            f"Your {place} controls and administers this account, including its privacy-related "
            "settings. Some settings are set for you; you can see which below.",
        ),
        NoticePoint(
            "access",
            f"{name} can access your data",
            f"{name} can access and process data of this account: how you use the products "
            "(interaction data), technical and diagnostic data, the contents of your communications, "
            "and your files. Every access to your data is shown to you here.",
        ),
        NoticePoint(
            "leaving",
            "When you leave, access ends",
            f"If you leave {name}, you may lose access to these products and to the content in them, "
            "including items you got for yourself while signed in with this account. Before you "
            "leave, you will see what you would lose and can take out what is yours.",
        ),
        NoticePoint(
            "policies",
            f"{name}'s policies apply",
            f"Your use of these products is subject to {name}'s own policies. Send privacy "
            f"questions and requests about your data to {name}'s administrators.",
        ),
        NoticePoint(
            "social",
            "Others may see some of your activity",
            "Social features can show some of your activity to other people in your "
            f"organisation's network; {name} decides how much.",
        ),
    ]
