"""The emails Tenantry sends: for each template its subject, its opening paragraph (both
of which an organisation may override) and the context its callers must give.

Callers: ``tenants.mail.service.send_later(name, to=..., context=..., key=...)``. Every
template also gets ``organisation`` (the organisation's name) and, when the caller gives
``link_path`` (``/account/privacy-requests/<id>``), ``link``: that page's full address.
Values are shown as given; pass dates and times already formatted (``2025-03-31``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MailTemplate:
    name: str
    #: What the console calls it.
    title: str
    #: Subject and opening paragraph: Jinja text over the context (sandboxed).
    subject: str
    intro: str
    #: Context keys the caller must give.
    required: tuple[str, ...]
    #: The context key holding the name to greet; "" greets nobody by name (a team).
    greeting: str = ""
    #: Sent to someone whose data is gone (the erased member's last message): once sent,
    #: or given up on, the message keeps neither its recipient nor its text.
    forgotten_once_sent: bool = False


TEMPLATES: dict[str, MailTemplate] = {
    t.name: t
    for t in (
        MailTemplate(
            "grant_approved",
            "Data access approved (to the admin who asked)",
            "Your access to {{ subject_name }}'s data was approved",
            "{{ approver_name }} approved your request for access to {{ subject_name }}'s data.",
            ("requester_name", "subject_name", "categories", "ends_at", "approver_name"),
            greeting="requester_name",
        ),
        MailTemplate(
            "grant_denied",
            "Data access denied (to the admin who asked)",
            "Your access to {{ subject_name }}'s data was denied",
            "{{ denier_name }} denied your request for access to {{ subject_name }}'s data.",
            ("requester_name", "subject_name", "denier_name", "reason"),
            greeting="requester_name",
        ),
        MailTemplate(
            "access_logged",
            "New access in the member's log",
            "{{ organisation }} accessed your data",
            "{{ admin_name }} at {{ organisation }} accessed your data. This is recorded in "
            "your account, with the reason they gave.",
            ("member_name", "admin_name", "category", "product_name", "purpose", "accessed_at"),
            greeting="member_name",
        ),
        MailTemplate(
            "request_received",
            "Privacy request received (to the member)",
            "We received your request: {{ kind_label }}",
            "{{ organisation }} received your privacy request and will answer by "
            "{{ due_on }} at the latest.",
            ("member_name", "kind_label", "due_on"),
            greeting="member_name",
        ),
        MailTemplate(
            "request_queued",
            "New privacy request (to the privacy officers)",
            "New privacy request from {{ member_name }}: {{ kind_label }}",
            "A new privacy request is in {{ organisation }}'s queue. The legal deadline "
            "to answer it is {{ due_on }}.",
            ("member_name", "kind_label", "due_on"),
        ),
        MailTemplate(
            "deadline_approaching",
            "Privacy request deadline approaching",
            "Due in {{ days_left }} days: privacy request from {{ member_name }}",
            "A privacy request is due on {{ due_on }}, in {{ days_left }} days, and is "
            "not answered yet.",
            ("member_name", "kind_label", "due_on", "days_left"),
        ),
        MailTemplate(
            "request_extended",
            "Privacy request deadline extended (to the member)",
            "More time is needed for your request: {{ kind_label }}",
            "{{ organisation }} needs more time to answer your privacy request. The new "
            "deadline is {{ due_on }}.",
            ("member_name", "kind_label", "due_on", "reason"),
            greeting="member_name",
        ),
        MailTemplate(
            "request_answered",
            "Privacy request answered (to the member)",
            "Your request was answered: {{ kind_label }}",
            "{{ organisation }} answered your privacy request.",
            ("member_name", "kind_label", "status_label", "answer", "rejected"),
            greeting="member_name",
        ),
        MailTemplate(
            "request_erased",
            "Personal data erased (to the member, the last message to their address)",
            "Your data was erased: {{ kind_label }}",
            "{{ organisation }} erased your personal data as you asked. Your account is "
            "closed, so this is the last message to this address from it.",
            ("member_name", "kind_label", "outcome"),
            greeting="member_name",
            forgotten_once_sent=True,
        ),
        MailTemplate(
            "export_ready",
            "Data export ready (to the member)",
            "Your data export is ready to download",
            "The copy of your data you asked {{ organisation }} for is ready. Download it "
            "from your account before {{ expires_on }}.",
            ("member_name", "expires_on"),
            greeting="member_name",
        ),
        MailTemplate(
            "departure_notice",
            "Departure notice (to the leaving member)",
            "Your account at {{ organisation }} ends after {{ last_day }}",
            "{{ organisation }} has scheduled the end of your account: your last day is "
            "{{ last_day }}.",
            ("member_name", "last_day", "export_until"),
            greeting="member_name",
        ),
        MailTemplate(
            "invitation_link",
            "Invitation with a sign-in link (no identity provider)",
            "You are invited to {{ organisation }}",
            "{{ organisation }} has added you as a member. Use the link below to sign in for "
            "the first time; it works once and until {{ expires_on }}.",
            ("member_name", "email", "expires_on"),
            greeting="member_name",
        ),
        MailTemplate(
            "invitation_sso",
            "Invitation to sign in through the identity provider",
            "You are invited to {{ organisation }}",
            "{{ organisation }} has added you as a member. Sign in through {{ organisation }}'s "
            "identity provider, with your usual work or school account.",
            ("member_name", "email"),
            greeting="member_name",
        ),
        MailTemplate(
            "member_moved",
            "Settings changed by a move (to the member)",
            "Your privacy settings at {{ organisation }} changed",
            "{{ organisation }} moved you to {{ unit_name }}, which changes some of your "
            "privacy settings. Your account page shows all of them and why.",
            ("member_name", "unit_name", "changes"),
            greeting="member_name",
        ),
        MailTemplate(
            "member_groups_changed",
            "Settings changed by a change of groups (to the member)",
            "Your privacy settings at {{ organisation }} changed",
            "{{ organisation }} {{ change }}, which changes some of your privacy settings. "
            "Your account page shows all of them and why.",
            ("member_name", "change", "changes"),
            greeting="member_name",
        ),
        MailTemplate(
            "access_review_opened",
            "Access review opened (to each reviewer)",
            "Access review: {{ count|counted('item') }} {{ 'waits' if count == 1 else 'wait' }} "
            "for your decision",
            "{{ organisation }} started the access review “{{ campaign_name }}”. You review "
            "{{ count|counted('item') }}: keep or revoke each, with a reason, by {{ due_on }}.",
            ("reviewer_name", "campaign_name", "count", "due_on"),
            greeting="reviewer_name",
        ),
        MailTemplate(
            "access_review_reminder",
            "Access review due soon (to reviewers with undecided items)",
            "Due {{ due_on }}: {{ count|counted('access review item') }} still "
            "{{ 'waits' if count == 1 else 'wait' }} for you",
            "The access review “{{ campaign_name }}” is due on {{ due_on }} and "
            "{{ count|counted('item') }} still {{ 'waits' if count == 1 else 'wait' }} for your "
            "decision. Undecided items then follow the "
            "campaign's rule.",
            ("reviewer_name", "campaign_name", "count", "due_on"),
            greeting="reviewer_name",
        ),
        MailTemplate(
            "policy_change_notice",
            "Coming changes to the member's settings (advance notice)",
            "Coming changes to your privacy settings at {{ organisation }}",
            "{{ organisation }} has scheduled changes to its policies that change some of your "
            "privacy settings. What changes for you, from when and why:",
            ("member_name", "changes"),
            greeting="member_name",
        ),
        MailTemplate(
            "policy_change_cancelled",
            "A scheduled change the member was told about is off",
            "A change to your privacy settings at {{ organisation }} is cancelled",
            "{{ organisation }} told you about a coming change to your privacy settings. "
            "It will not happen as announced:",
            ("member_name", "changes"),
            greeting="member_name",
        ),
        MailTemplate(
            "domain_flagged",
            "A verified domain lost its DNS record (to the owners)",
            "{{ domain }}: its verification record has disappeared",
            "The DNS record that proves {{ organisation }} controls {{ domain }} was not "
            "found at the last check. The domain stays flagged in the console until the "
            "record is back or the domain is removed.",
            ("domain", "record_name", "record_value"),
        ),
    )
}
