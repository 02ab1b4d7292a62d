"""What a sign-in log entry says: the method, the outcome and a stable reason code, with
the plain words each code is shown in. Pure: no database, no web framework.

The codes are an interface (API filters, CSV exports, SIEM rules): add new ones, never
rename. ``message_for`` is the only way a reason reaches a page, so a page never shows
text taken from a request.
"""

from __future__ import annotations

from enum import StrEnum


class SignInMethod(StrEnum):
    SSO = "sso"
    PASSWORD = "password"
    BREAK_GLASS = "break_glass"
    PRODUCT_CLIENT = "product_client"
    #: A one-time link from an invitation email.
    INVITATION = "invitation"


#: How each way of signing in reads on the console's sign-in log.
METHOD_NAMES: dict[SignInMethod, str] = {
    SignInMethod.SSO: "Identity provider (SSO)",
    SignInMethod.PASSWORD: "Password",
    SignInMethod.BREAK_GLASS: "Emergency access (break-glass)",
    SignInMethod.PRODUCT_CLIENT: "A product, for the member",
    SignInMethod.INVITATION: "Invitation link",
}


class SignInOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    REFUSED = "refused"


class Reason(StrEnum):
    """Why a sign-in was refused."""

    # The sign-in form and its surroundings.
    FORM_EXPIRED = "form_expired"
    #: Not a refusal: a page sent a signed-out (or revoked) session to sign in again.
    SESSION_ENDED = "session_ended"
    RATE_LIMITED = "rate_limited"
    # The identity provider and the OpenID Connect protocol.
    SSO_NOT_CONFIGURED = "sso_not_configured"
    IDP_UNREACHABLE = "idp_unreachable"
    IDP_METADATA_INVALID = "idp_metadata_invalid"
    IDP_ERROR = "idp_error"
    INCOMPLETE_RESPONSE = "incomplete_response"
    STATE_UNKNOWN = "state_unknown"
    STATE_REPLAYED = "state_replayed"
    SIGN_IN_EXPIRED = "sign_in_expired"
    BROWSER_MISMATCH = "browser_mismatch"
    ISSUER_MISMATCH = "issuer_mismatch"
    TOKEN_EXCHANGE_FAILED = "token_exchange_failed"
    NO_ID_TOKEN = "no_id_token"
    ID_TOKEN_BAD_SIGNATURE = "id_token_bad_signature"
    ID_TOKEN_WRONG_ISSUER = "id_token_wrong_issuer"
    ID_TOKEN_WRONG_AUDIENCE = "id_token_wrong_audience"
    ID_TOKEN_WRONG_AZP = "id_token_wrong_azp"
    ID_TOKEN_EXPIRED = "id_token_expired"
    ID_TOKEN_NOT_YET_VALID = "id_token_not_yet_valid"
    ID_TOKEN_ISSUED_IN_FUTURE = "id_token_issued_in_future"
    ID_TOKEN_TOO_OLD = "id_token_too_old"
    ID_TOKEN_NO_ISSUE_TIME = "id_token_no_issue_time"
    ID_TOKEN_NO_SUBJECT = "id_token_no_subject"
    ID_TOKEN_BAD_CLAIMS = "id_token_bad_claims"
    NONCE_MISSING = "nonce_missing"
    NONCE_MISMATCH = "nonce_mismatch"
    USERINFO_FAILED = "userinfo_failed"
    USERINFO_SUBJECT_MISMATCH = "userinfo_subject_mismatch"
    LOGOUT_TOKEN_INVALID = "logout_token_invalid"
    # Who the person is, and whether the organisation lets them in.
    NO_EMAIL = "no_email"
    DOMAIN_NOT_ALLOWED = "domain_not_allowed"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    SUBJECT_MISMATCH = "subject_mismatch"
    UNKNOWN_MEMBER = "unknown_member"
    MEMBER_SUSPENDED = "member_suspended"
    MEMBER_DEPARTED = "member_departed"
    MEMBER_PURGED = "member_purged"
    # Passwords and the break-glass admin.
    BAD_CREDENTIALS = "bad_credentials"
    CREDENTIAL_LOCKED = "credential_locked"
    PASSWORD_SIGN_IN_OFF = "password_sign_in_off"
    # Invitation links (tenants.members.invitations).
    INVITATION_INVALID = "invitation_invalid"
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_USED = "invitation_used"
    # Products signing in with client credentials.
    INVALID_CLIENT = "invalid_client"
    INVALID_SCOPE = "invalid_scope"


R = Reason
#: Each reason in plain words, for the person who tried to sign in.
MESSAGES: dict[Reason, str] = {
    R.FORM_EXPIRED: "The form expired; please try again.",
    R.SESSION_ENDED: "Your session has ended; please sign in again.",
    R.RATE_LIMITED: "Too many sign-in attempts from your address; wait a little and try again.",
    R.SSO_NOT_CONFIGURED: "This organisation has no identity provider for sign-in.",
    R.IDP_UNREACHABLE: "Your identity provider could not be reached; try again later.",
    R.IDP_METADATA_INVALID: "Your identity provider's configuration could not be used; "
    "ask your administrator.",
    R.IDP_ERROR: "Your identity provider ended the sign-in without signing you in.",
    R.INCOMPLETE_RESPONSE: "The answer from your identity provider is incomplete.",
    R.STATE_UNKNOWN: "This sign-in link is unknown or has expired; start again.",
    R.STATE_REPLAYED: "This sign-in was already completed (replayed state); start again.",
    R.SIGN_IN_EXPIRED: "The sign-in took too long; start again.",
    R.BROWSER_MISMATCH: "The sign-in was started in another browser; start again here.",
    R.ISSUER_MISMATCH: "The answer came from another identity provider.",
    R.TOKEN_EXCHANGE_FAILED: "Your identity provider refused to complete the sign-in.",
    R.NO_ID_TOKEN: "Your identity provider did not say who you are (no ID token).",
    R.ID_TOKEN_BAD_SIGNATURE: "The ID token is not validly signed by the identity provider.",
    R.ID_TOKEN_WRONG_ISSUER: "The ID token was issued by another identity provider.",
    R.ID_TOKEN_WRONG_AUDIENCE: "The ID token is meant for another client.",
    R.ID_TOKEN_WRONG_AZP: "The ID token was issued to another client.",
    R.ID_TOKEN_EXPIRED: "The ID token has expired.",
    R.ID_TOKEN_NOT_YET_VALID: "The ID token is not valid yet; check the clocks.",
    R.ID_TOKEN_ISSUED_IN_FUTURE: "The ID token was issued in the future; check the clocks.",
    R.ID_TOKEN_TOO_OLD: "The ID token was issued too long ago.",
    R.ID_TOKEN_NO_ISSUE_TIME: "The ID token has no issue time.",
    R.ID_TOKEN_NO_SUBJECT: "The ID token has no subject.",
    R.ID_TOKEN_BAD_CLAIMS: "The ID token holds an empty or overlong identifier, or text "
    "that cannot be stored.",
    R.NONCE_MISSING: "The ID token carries no nonce.",
    R.NONCE_MISMATCH: "The ID token does not belong to this sign-in (nonce).",
    R.USERINFO_FAILED: "Your identity provider's user information could not be read.",
    R.USERINFO_SUBJECT_MISMATCH: "Your identity provider's user information is about "
    "another person.",
    R.LOGOUT_TOKEN_INVALID: "The logout token is not valid.",
    R.NO_EMAIL: "Your identity provider did not tell us your email address.",
    R.DOMAIN_NOT_ALLOWED: "Accounts from your email domain cannot sign in to this organisation.",
    R.EMAIL_NOT_VERIFIED: "Your identity provider has not verified your email address.",
    R.SUBJECT_MISMATCH: "This account is linked to another identity at your identity "
    "provider; ask your administrator.",
    R.UNKNOWN_MEMBER: "You have no account at this organisation; ask your administrator.",
    R.MEMBER_SUSPENDED: "Your account is suspended; it cannot sign in.",
    R.MEMBER_DEPARTED: "Your account is departed; it cannot sign in.",
    R.MEMBER_PURGED: "Your account was removed; it cannot sign in.",
    R.BAD_CREDENTIALS: "The email or password is not right.",
    R.CREDENTIAL_LOCKED: "Too many failed attempts; try again in a few minutes.",
    R.PASSWORD_SIGN_IN_OFF: "Password sign-in is switched off for this organisation; "
    "use your identity provider.",
    R.INVITATION_INVALID: "This sign-in link is not valid; open it from the email again.",
    R.INVITATION_EXPIRED: "This sign-in link has expired; ask your administrator for a new one.",
    R.INVITATION_USED: "This sign-in link was already used; each link signs in once.",
    R.INVALID_CLIENT: "The client credentials are not valid.",
    R.INVALID_SCOPE: "The client asked for scopes it may not have.",
}


def message_for(code: str | None) -> str | None:
    """The fixed message of a known reason code; None for anything else (never echoes input)."""
    if not code:
        return None
    try:
        return MESSAGES[Reason(code)]
    except ValueError:
        return None


def member_status_reason(status: str) -> Reason:
    """The refusal for a member whose lifecycle status forbids signing in."""
    try:
        return Reason(f"member_{status}")
    except ValueError:
        return Reason.MEMBER_SUSPENDED
