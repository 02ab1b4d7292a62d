"""A FAKE of the Keycloak Admin REST API (a contract fake, not Keycloak).

No Keycloak server can be installed here, so the Keycloak adapter (tenants/identity/
keycloak.py, python-keycloak underneath) is tested against this small ASGI app over real
HTTP. Its routes and JSON shapes follow Keycloak's Admin REST API as published in the
npm package ``@keycloak/keycloak-admin-client`` 26.x (``lib/resources/{users,groups,
organizations,identityProviders}.js`` for the routes, ``lib/defs/*Representation.d.ts``
for the bodies), and it refuses what Keycloak refuses where the adapter depends on it:

- the client-credentials token endpoint ``/realms/{realm}/protocol/openid-connect/token``
  (401 ``unauthorized_client`` on a wrong secret) and a Bearer token on every admin call;
- users: 409 on a duplicate username or email, 404 on unknown ids, usernames lower-cased
  and read-only after creation, attribute search ``q=key:value``, ``exact``;
- organizations: 409 on a duplicate name or alias or a domain owned by another
  organization, alias immutable, members added by posting the user id, identity
  providers linked by posting their alias;
- groups: top-level and child groups, 409 on a duplicate sibling name, ``group-by-path``;
- identity providers: 409 on a duplicate alias, the client secret masked when read;
- ``POST /users/{id}/logout`` ends the user's sessions (``GET /users/{id}/sessions``);
- and, as a realm with Keycloak's defaults does (``keycloak_fake_profile.py``): access tokens
  expire (``token_lifetime``; python-keycloak then fetches a new one) and carry the service
  account's realm-management roles in ``resource_access``, every route needs its role (403
  ``HTTP 403 Forbidden`` otherwise), the user profile drops undeclared attributes and
  validates email and names, organizations answer 404 until ``organizationsEnabled`` is
  set on the realm and, on 26.0-26.3 (``version``), need a domain; an identity provider's
  PUT replaces its whole representation.

Users, the token endpoint and the server live here; groups, organizations and identity
providers in ``keycloak_fake_realm.py``. Every request is appended to ``requests`` (method,
path below the realm, body, status), which is what tests assert on. ``KeycloakFakeServer``
serves it with uvicorn on a free port and can ``stop()`` and ``start()`` again on the same
port with the same state (an outage).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.keycloak_fake_profile import (
    ADMIN_ROLES,
    MANAGE_REALM,
    SUFFICIENT_ROLES,
    VIEW_REALM,
    UserProfile,
    UserProfileError,
    required_roles,
)
from tests.support.keycloak_fake_realm import (
    JSON,
    KeycloakError,
    RealmRoutes,
    _conflict,
    _flag,
    _matches_q,
    _not_found,
    _page,
)


@dataclass(frozen=True)
class Logged:
    method: str
    #: The path below ``/admin/realms/{realm}`` (``/users/…``), or the full path otherwise.
    path: str
    body: Any
    status: int

    @property
    def is_write(self) -> bool:
        return self.method != "GET" and not self.path.endswith("/token")


@dataclass
class KeycloakFake(RealmRoutes):
    """The realm's state and the ASGI app serving it. Tests read and change the state
    directly (``add_session``, ``users``) and read ``requests``."""

    realm: str = "tenantry"
    client_id: str = "tenantry-sync"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    users: dict[str, JSON] = field(default_factory=dict)
    sessions: dict[str, list[JSON]] = field(default_factory=dict)
    groups: dict[str, JSON] = field(default_factory=dict)
    group_members: dict[str, list[str]] = field(default_factory=dict)
    organizations: dict[str, JSON] = field(default_factory=dict)
    organization_members: dict[str, list[str]] = field(default_factory=dict)
    organization_idps: dict[str, list[str]] = field(default_factory=dict)
    idps: dict[str, JSON] = field(default_factory=dict)
    requests: list[Logged] = field(default_factory=list)
    #: Issued access tokens and when each expires (epoch seconds).
    tokens: dict[str, float] = field(default_factory=dict)
    #: Seconds an access token lives (Keycloak's default is 300).
    token_lifetime: int = 300
    #: The service account's roles of the realm-management client.
    service_account_roles: set[str] = field(default_factory=lambda: set(SUFFICIENT_ROLES))
    #: The server's version (``/admin/serverinfo``): 26.0-26.3 require organization domains.
    version: str = "26.3.2"
    organizations_enabled: bool = False
    #: When set, every admin call answers this status (a 503 while Keycloak restarts).
    failing_with: int | None = None
    user_profile: UserProfile = field(default_factory=UserProfile)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- helpers for tests ------------------------------------------------------------

    def user_by_username(self, username: str) -> JSON | None:
        return next((u for u in self.users.values() if u["username"] == username), None)

    def add_session(self, user_id: str) -> None:
        """A sign-in at Keycloak (what a browser would create)."""
        self.sessions.setdefault(user_id, []).append(
            {
                "id": str(uuid.uuid4()),
                "userId": user_id,
                "username": self.users[user_id]["username"],
                "ipAddress": "192.0.2.1",
                "start": int(time.time() * 1000),
                "lastAccess": int(time.time() * 1000),
                "clients": {},
            }
        )

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (as if its lifetime ran out)."""
        self.tokens.clear()

    def prepared(self) -> KeycloakFake:
        """The realm as ``tenantry identity setup`` leaves it (for tests about other things)."""
        self.organizations_enabled = True
        self.user_profile.config["attributes"] += [
            {"name": n, "permissions": {"view": ["admin"], "edit": ["admin"]}, "multivalued": False}
            for n in ("tenantry_member_id", "tenantry_org_id")
        ]
        return self

    def writes(self) -> list[Logged]:
        return [r for r in self.requests if r.is_write]

    def user_groups(self, user_id: str) -> list[str]:
        return sorted(self.groups[g]["name"] for g, m in self.group_members.items() if user_id in m)

    # --- the HTTP side ------------------------------------------------------------------

    def asgi_app(self) -> Starlette:
        base = "/admin/realms/{realm}"
        routes = [
            Route("/realms/{realm}/protocol/openid-connect/token", self._token, methods=["POST"]),
            Route("/admin/serverinfo", self._serverinfo, methods=["GET"]),
            Route(base, self._realm, methods=["GET", "PUT"]),
            Route(base + "/users/profile", self._profile, methods=["GET", "PUT"]),
            Route(base + "/users", self._users, methods=["GET", "POST"]),
            Route(base + "/users/{id}", self._user, methods=["GET", "PUT", "DELETE"]),
            Route(base + "/users/{id}/logout", self._logout, methods=["POST"]),
            Route(base + "/users/{id}/sessions", self._sessions, methods=["GET"]),
            Route(base + "/users/{id}/groups", self._user_groups, methods=["GET"]),
            Route(base + "/users/{id}/groups/{group}", self._user_group, methods=["PUT", "DELETE"]),
            Route(base + "/groups", self._groups, methods=["GET", "POST"]),
            Route(base + "/groups/{id}", self._group, methods=["GET", "PUT", "DELETE"]),
            Route(base + "/groups/{id}/children", self._children, methods=["GET", "POST"]),
            Route(base + "/groups/{id}/members", self._group_members, methods=["GET"]),
            Route(base + "/group-by-path/{path:path}", self._group_by_path, methods=["GET"]),
            Route(
                base + "/organizations/members/{id}/organizations",
                self._user_organizations,
                methods=["GET"],
            ),
            Route(base + "/organizations", self._organizations, methods=["GET", "POST"]),
            Route(
                base + "/organizations/{id}", self._organization, methods=["GET", "PUT", "DELETE"]
            ),
            Route(base + "/organizations/{id}/members", self._org_members, methods=["GET", "POST"]),
            Route(
                base + "/organizations/{id}/members/{user}",
                self._org_member,
                methods=["GET", "DELETE"],
            ),
            Route(
                base + "/organizations/{id}/identity-providers",
                self._org_idps,
                methods=["GET", "POST"],
            ),
            Route(
                base + "/organizations/{id}/identity-providers/{alias}",
                self._org_idp,
                methods=["DELETE"],
            ),
            Route(base + "/identity-provider/instances", self._idps, methods=["GET", "POST"]),
            Route(
                base + "/identity-provider/instances/{alias}",
                self._idp,
                methods=["GET", "PUT", "DELETE"],
            ),
        ]
        return Starlette(
            routes=[Route(r.path, self._wrap(r.endpoint), methods=r.methods) for r in routes]
        )

    def _wrap(self, endpoint: Any) -> Any:
        async def handle(request: Request) -> Response:
            raw = await request.body()
            body: Any
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            if request.url.path.endswith("/token"):
                body = dict((await request.form()).items())
            prefix = f"/admin/realms/{self.realm}"
            path = request.url.path.removeprefix(prefix)
            with self.lock:
                try:
                    if request.path_params.get("realm", self.realm) != self.realm:
                        raise _not_found("Realm not found.")
                    if self.failing_with is not None and not path.endswith("/token"):
                        raise KeycloakError(self.failing_with, {"error": "unknown_error"})
                    if not request.url.path.endswith("/token"):
                        self._authorise(request, path)
                    if path.startswith("/organizations") and not self.organizations_enabled:
                        raise KeycloakError(
                            404, {"errorMessage": "Organizations not enabled for this realm."}
                        )
                    result: Response = endpoint(request, body)
                except KeycloakError as error:
                    result = JSONResponse(error.body, status_code=error.status)
                except UserProfileError as error:
                    result = JSONResponse(error.body, status_code=400)
                self.requests.append(Logged(request.method, path, body, result.status_code))
            return result

        return handle

    def _authorise(self, request: Request, path: str) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self.tokens.get(token, 0) <= time.time():
            raise KeycloakError(401, {"error": "HTTP 401 Unauthorized"})
        held = self.service_account_roles & ADMIN_ROLES
        needed = required_roles(request.method, path)
        if not held or (needed is not None and not held & needed):
            raise KeycloakError(403, {"error": "HTTP 403 Forbidden"})

    def _token(self, request: Request, form: JSON) -> Response:
        if form.get("grant_type") != "client_credentials":
            raise KeycloakError(400, {"error": "unsupported_grant_type"})
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            raise KeycloakError(
                401,
                {
                    "error": "unauthorized_client",
                    "error_description": "Invalid client or Invalid client credentials",
                },
            )
        token = self._access_token()
        self.tokens[token] = time.time() + self.token_lifetime
        return JSONResponse(
            {
                "access_token": token,
                "expires_in": self.token_lifetime,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": "profile email",
            }
        )

    def _access_token(self) -> str:
        """A JWT-shaped token carrying the service account's roles as Keycloak puts them
        (``resource_access.realm-management.roles``); the fake checks it by lookup, so the
        signature is a random string."""

        def part(value: JSON) -> str:
            raw = json.dumps(value, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        now = int(time.time())
        claims = {
            "iss": f"http://keycloak.invalid/realms/{self.realm}",
            "azp": self.client_id,
            "typ": "Bearer",
            "iat": now,
            "exp": now + self.token_lifetime,
            "resource_access": {"realm-management": {"roles": sorted(self.service_account_roles)}},
        }
        return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(24)}"

    # the server and the realm

    def _can_view_realm(self) -> bool:
        return bool(self.service_account_roles & {MANAGE_REALM, VIEW_REALM})

    def _serverinfo(self, request: Request, body: Any) -> Response:
        info: JSON = {"themes": {}, "enums": {}}
        if self._can_view_realm():
            info["systemInfo"] = {"version": self.version, "serverTime": time.ctime()}
        return JSONResponse(info)

    def _realm(self, request: Request, body: Any) -> Response:
        if request.method == "GET":
            rep: JSON = {"id": self.realm, "realm": self.realm, "enabled": True}
            if self._can_view_realm():
                rep["organizationsEnabled"] = self.organizations_enabled
            return JSONResponse(rep)
        if not isinstance(body, dict):
            raise KeycloakError(400, {"error": "unknown_error"})
        if "organizationsEnabled" in body:
            self.organizations_enabled = bool(body["organizationsEnabled"])
        return Response(status_code=204)

    def _profile(self, request: Request, body: Any) -> Response:
        if request.method == "PUT":
            self.user_profile.check_config(body)
            self.user_profile.config = body
        return JSONResponse(self.user_profile.config)

    def _user_rep(self, user: JSON) -> JSON:
        return {**user, "attributes": self.user_profile.visible(user["attributes"])}

    # users

    def _get_user(self, user_id: str) -> JSON:
        if user_id not in self.users:
            raise _not_found("User not found")
        return self.users[user_id]

    def _check_unique_email(self, email: str | None, user_id: str | None) -> None:
        if email and any(u["email"] == email and u["id"] != user_id for u in self.users.values()):
            raise _conflict("User exists with same email")

    def _users(self, request: Request, body: Any) -> Response:
        if request.method == "POST":
            if not isinstance(body, dict) or not body.get("username"):
                raise KeycloakError(
                    400, {"field": "username", "errorMessage": "error-user-attribute-required"}
                )
            username = str(body["username"]).lower()
            self.user_profile.validate(body)
            if self.user_by_username(username):
                raise _conflict("User exists with same username")
            email = (body.get("email") or "").lower() or None
            self._check_unique_email(email, None)
            user_id = str(uuid.uuid4())
            self.users[user_id] = {
                "id": user_id,
                "username": username,
                "email": email,
                "emailVerified": bool(body.get("emailVerified", False)),
                "firstName": body.get("firstName"),
                "lastName": body.get("lastName"),
                "enabled": bool(body.get("enabled", False)),
                "attributes": self.user_profile.written({}, body.get("attributes") or {}),
                "createdTimestamp": int(time.time() * 1000),
            }
            return self._created(request, user_id)
        params = request.query_params
        exact = _flag(request, "exact", False)
        found = []
        for user in self.users.values():
            for name in ("username", "email", "firstName", "lastName"):
                wanted = params.get(name)
                value = user.get(name) or ""
                if wanted is not None and not (
                    value == wanted.lower() if exact else wanted.lower() in value.lower()
                ):
                    break
            else:
                search = params.get("search")
                if search and search.lower() not in f"{user['username']} {user.get('email') or ''}":
                    continue
                if _matches_q(user, params.get("q")):
                    found.append(self._user_rep(user))
        brief = _flag(request, "briefRepresentation", False)
        return JSONResponse(
            [
                {k: v for k, v in u.items() if k != "attributes" or not brief}
                for u in _page(found, request)
            ]
        )

    def _user(self, request: Request, body: Any) -> Response:
        user = self._get_user(request.path_params["id"])
        if request.method == "GET":
            return JSONResponse(self._user_rep(user))
        if request.method == "DELETE":
            del self.users[user["id"]]
            self.sessions.pop(user["id"], None)
            for members in [*self.group_members.values(), *self.organization_members.values()]:
                if user["id"] in members:
                    members.remove(user["id"])
            return Response(status_code=204)
        if not isinstance(body, dict):
            raise KeycloakError(400, {"error": "unknown_error"})
        if "username" in body and str(body["username"]).lower() != user["username"]:
            raise KeycloakError(
                400, {"field": "username", "errorMessage": "error-user-attribute-read-only"}
            )
        self.user_profile.validate(body)
        if "email" in body:
            body["email"] = (body["email"] or "").lower() or None
            self._check_unique_email(body["email"], user["id"])
        for key in ("email", "emailVerified", "firstName", "lastName", "enabled"):
            if key in body:
                user[key] = body[key]
        if isinstance(body.get("attributes"), dict):
            user["attributes"] = self.user_profile.written(user["attributes"], body["attributes"])
        return Response(status_code=204)

    def _logout(self, request: Request, body: Any) -> Response:
        user = self._get_user(request.path_params["id"])
        self.sessions.pop(user["id"], None)
        return Response(status_code=204)

    def _sessions(self, request: Request, body: Any) -> Response:
        user = self._get_user(request.path_params["id"])
        return JSONResponse(self.sessions.get(user["id"], []))

    def _user_groups(self, request: Request, body: Any) -> Response:
        user = self._get_user(request.path_params["id"])
        brief = _flag(request, "briefRepresentation", True)
        held = [
            {**self._group_rep(self.groups[g], brief), "path": self._path(self.groups[g])}
            for g, members in self.group_members.items()
            if user["id"] in members
        ]
        return JSONResponse(_page(held, request))

    def _user_group(self, request: Request, body: Any) -> Response:
        user = self._get_user(request.path_params["id"])
        group = self._get_group(request.path_params["group"])
        members = self.group_members.setdefault(group["id"], [])
        if request.method == "PUT" and user["id"] not in members:
            members.append(user["id"])
        if request.method == "DELETE" and user["id"] in members:
            members.remove(user["id"])
        return Response(status_code=204)


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class KeycloakFakeServer:
    """Serves a KeycloakFake over HTTP on 127.0.0.1; ``stop()`` and ``start()`` again keep
    the port and the state, so a test can take "Keycloak" down for a while."""

    def __init__(self, fake: KeycloakFake | None = None) -> None:
        self.fake = fake or KeycloakFake()
        self.port = 0
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        server = _QuietServer(
            uvicorn.Config(
                self.fake.asgi_app(), log_level="warning", lifespan="off", access_log=False
            )
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="keycloak-fake"
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Keycloak fake did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None


@contextlib.contextmanager
def run_keycloak_fake(fake: KeycloakFake | None = None) -> Iterator[KeycloakFakeServer]:
    server = KeycloakFakeServer(fake)
    server.start()
    try:
        yield server
    finally:
        server.stop()
