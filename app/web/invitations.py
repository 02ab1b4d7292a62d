"""The page an invitation email's sign-in link opens (``tenants.members.invitations``).

Opening the link (GET) only shows whom it is for and a button: mail scanners and link
previews fetch links, and must not spend them. The button (POST, with the browser's
CSRF token) spends the link and signs the member in, once. A forged, expired or used
link gets a page saying which and what to do, and a line in the sign-in log.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.web.pages import Web, posted_form
from app.web.signin import (
    browser_csrf,
    browser_form_ok,
    copy_cookies,
    signed_in_response,
    too_many_attempts,
)
from tenants import db
from tenants.actors import Actor, ActorKind, member_as_actor
from tenants.errors import InvalidInputError
from tenants.members import invitations
from tenants.members.invitations import InvitationLinkError, LinkClaims, LinkProblem
from tenants.organisations.models import Organisation
from tenants.permissions import is_admin
from tenants.sessions import service as sessions
from tenants.sessions.models import AuthMethod
from tenants.signins import service as sign_ins
from tenants.signins.rules import Reason, SignInMethod, member_status_reason

#: How each problem is answered: the status, and the sign-in log's reason.
STATUS = {
    LinkProblem.INVALID: 400,
    LinkProblem.EXPIRED: 410,
    LinkProblem.USED: 410,
    LinkProblem.CANNOT_SIGN_IN: 403,
}
REASON = {
    LinkProblem.INVALID: Reason.INVITATION_INVALID,
    LinkProblem.EXPIRED: Reason.INVITATION_EXPIRED,
    LinkProblem.USED: Reason.INVITATION_USED,
}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def routes(web: Web) -> list[BaseRoute]:
    secret = web.settings.secret_key

    async def refused(
        request: Request, error: InvitationLinkError, claims: LinkClaims | None
    ) -> Response:
        """The page saying why the link cannot be used; logged in the sign-in log of the
        organisation the link names (a forged link names none that can be trusted)."""
        if claims is not None and request.method == "POST":
            reason = REASON.get(error.problem) or member_status_reason("suspended")
            await sign_ins.record_for(
                claims.org_id,
                sign_ins.SignInAttempt(
                    SignInMethod.INVITATION,
                    reason=reason,
                    member_id=claims.member_id,
                    client_addr=_client(request),
                    user_agent=request.headers.get("user-agent"),
                ),
            )
        return web.message(
            request,
            error.title,
            error.message,
            status=STATUS[error.problem],
            link=("/login", "Go to sign-in"),
        )

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        claims: LinkClaims | None = None
        try:
            claims = invitations.read_link_token(secret, token)
            async with db.tenant_transaction(claims.org_id):
                member = await invitations.member_for_link(claims)
                org = await Organisation.get(id=claims.org_id)
        except InvitationLinkError as error:
            return await refused(request, error, claims)
        response = Response()
        browser = web.cookies.ensure_browser_id(request, response)
        page = web.render(
            request,
            "invitation.html",
            {
                "org": org,
                "member": member,
                "csrf": browser_csrf(web, browser),
                "action": request.url.path,
                "expires_at": claims.expires_at,
            },
        )
        copy_cookies(response, page)
        return page

    async def accept(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            form = await posted_form(request)
        except InvalidInputError:
            form = {}  # refused below as a form not sent from this browser: nothing spent
        if not browser_form_ok(web, request, form):
            # Nothing spent: the page is shown again with a fresh token.
            return RedirectResponse(request.url.path, status_code=303)
        if (wait := await web.login_limiter.retry_after(_client(request))) is not None:
            return too_many_attempts(web, request, wait)
        claims: LinkClaims | None = None
        try:
            claims = invitations.read_link_token(secret, token)
            async with db.tenant_transaction(claims.org_id):
                actor = Actor(
                    ActorKind.SYSTEM,
                    "invitation-link",
                    "invitation link",
                    request_id=getattr(request.state, "request_id", None),
                    client_addr=_client(request),
                )
                member = await invitations.use_link(claims, actor=actor)
                member_actor = member_as_actor(member.id, member.name, member.email, via=actor)
                session = await sessions.create_session(
                    member,
                    AuthMethod.INVITATION,
                    actor=member_actor,
                    user_agent=request.headers.get("user-agent"),
                )
                await sign_ins.record(
                    sign_ins.SignInAttempt(
                        SignInMethod.INVITATION,
                        email=member.email,
                        member_id=member.id,
                        client_addr=_client(request),
                        user_agent=request.headers.get("user-agent"),
                    )
                )
                org = await Organisation.get(id=claims.org_id)
        except InvitationLinkError as error:
            return await refused(request, error, claims)
        landing = "/console" if is_admin(member.roles) else "/account"
        return await signed_in_response(web, request, session, org.slug, org.name, landing)

    return [
        Route("/invitation/{token}", show, methods=["GET"]),
        Route("/invitation/{token}", accept, methods=["POST"]),
    ]
