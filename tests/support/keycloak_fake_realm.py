"""The groups, organizations and identity providers of the Keycloak Admin REST API FAKE
(see tests/support/keycloak_fake.py, which mixes these routes into ``KeycloakFake``), and
the small helpers both modules share. Shapes follow ``@keycloak/keycloak-admin-client``
26.x: ``lib/resources/{groups,organizations,identityProviders}.js`` and
``lib/defs/{group,organization,organizationDomain,member,identityProvider}Representation.d.ts``.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.support.keycloak_fake_profile import requires_organization_domain

JSON = dict[str, Any]
MASKED_SECRET = "**********"


class KeycloakError(Exception):
    def __init__(self, status: int, body: JSON) -> None:
        self.status = status
        self.body = body


def _conflict(message: str) -> KeycloakError:
    return KeycloakError(409, {"errorMessage": message})


def _not_found(message: str) -> KeycloakError:
    return KeycloakError(404, {"error": message})


def _matches_q(rep: JSON, q: str | None) -> bool:
    """Keycloak's ``q`` search: space-separated ``key:value`` pairs on attributes."""
    if not q:
        return True
    attributes = rep.get("attributes") or {}
    for pair in q.split():
        key, _, value = pair.partition(":")
        if value not in (attributes.get(key) or []):
            return False
    return True


def _page(items: list[JSON], request: Request) -> list[JSON]:
    first = int(request.query_params.get("first", 0))
    maximum = int(request.query_params.get("max", 100))
    return items[first : first + maximum]


def _flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    return default if raw is None else raw.lower() == "true"


class RealmRoutes:
    """Groups, organizations and identity providers: the state lives on ``KeycloakFake``."""

    users: dict[str, JSON]
    groups: dict[str, JSON]
    group_members: dict[str, list[str]]
    organizations: dict[str, JSON]
    organization_members: dict[str, list[str]]
    organization_idps: dict[str, list[str]]
    idps: dict[str, JSON]
    version: str

    def _get_user(self, user_id: str) -> JSON:
        raise NotImplementedError

    def _user_rep(self, user: JSON) -> JSON:
        raise NotImplementedError

    def _created(self, request: Request, new_id: str) -> Response:
        return Response(status_code=201, headers={"Location": f"{request.url}/{new_id}"})

    # --- representations ----------------------------------------------------------------

    def _group_rep(self, group: JSON, brief: bool) -> JSON:
        rep = {k: v for k, v in group.items() if k != "attributes" or not brief}
        rep["subGroupCount"] = sum(
            1 for g in self.groups.values() if g.get("parentId") == group["id"]
        )
        rep["subGroups"] = []
        return rep

    def _path(self, group: JSON) -> str:
        parent = self.groups.get(group.get("parentId") or "")
        return (self._path(parent) if parent else "") + "/" + group["name"]

    def _idp_rep(self, idp: JSON) -> JSON:
        config = dict(idp.get("config") or {})
        if "clientSecret" in config:
            config["clientSecret"] = MASKED_SECRET
        return {**idp, "config": config}

    def _org_rep(self, org: JSON) -> JSON:
        return {
            **org,
            "identityProviders": [
                self._idp_rep(self.idps[a]) for a in self.organization_idps[org["id"]]
            ],
        }

    # groups

    def _get_group(self, group_id: str) -> JSON:
        if group_id not in self.groups:
            raise _not_found("Could not find group by id")
        return self.groups[group_id]

    def _new_group(self, request: Request, body: Any, parent: str | None) -> Response:
        if not isinstance(body, dict) or not body.get("name"):
            raise KeycloakError(400, {"errorMessage": "Group name is missing"})
        if any(
            g["name"] == body["name"] and g.get("parentId") == parent for g in self.groups.values()
        ):
            where = "Top level group" if parent is None else "Sibling group"
            raise _conflict(f"{where} named '{body['name']}' already exists.")
        group_id = str(uuid.uuid4())
        self.groups[group_id] = {
            "id": group_id,
            "name": body["name"],
            "description": body.get("description"),
            "attributes": body.get("attributes") or {},
            "parentId": parent,
        }
        self.groups[group_id]["path"] = self._path(self.groups[group_id])
        return self._created(request, group_id)

    def _groups(self, request: Request, body: Any) -> Response:
        if request.method == "POST":
            return self._new_group(request, body, None)
        search = request.query_params.get("search")
        brief = _flag(request, "briefRepresentation", True)
        tops = [
            self._group_rep(g, brief)
            for g in self.groups.values()
            if g.get("parentId") is None
            and (not search or search.lower() in g["name"].lower())
            and _matches_q(g, request.query_params.get("q"))
        ]
        return JSONResponse(_page(tops, request))

    def _group(self, request: Request, body: Any) -> Response:
        group = self._get_group(request.path_params["id"])
        if request.method == "GET":
            return JSONResponse(self._group_rep(group, False))
        if request.method == "DELETE":
            doomed = [group["id"]]
            while doomed:
                gid = doomed.pop()
                doomed += [g for g, rep in self.groups.items() if rep.get("parentId") == gid]
                self.groups.pop(gid, None)
                self.group_members.pop(gid, None)
            return Response(status_code=204)
        if not isinstance(body, dict):
            raise KeycloakError(400, {"error": "unknown_error"})
        name = body.get("name", group["name"])
        if any(
            g["name"] == name
            and g.get("parentId") == group.get("parentId")
            and g["id"] != group["id"]
            for g in self.groups.values()
        ):
            raise _conflict(f"Sibling group named '{name}' already exists.")
        group["name"] = name
        for key in ("description", "attributes"):
            if key in body:
                group[key] = body[key]
        group["path"] = self._path(group)
        return Response(status_code=204)

    def _children(self, request: Request, body: Any) -> Response:
        group = self._get_group(request.path_params["id"])
        if request.method == "POST":
            return self._new_group(request, body, group["id"])
        brief = _flag(request, "briefRepresentation", False)
        children = [
            self._group_rep(g, brief)
            for g in self.groups.values()
            if g.get("parentId") == group["id"]
        ]
        return JSONResponse(_page(children, request))

    def _group_members(self, request: Request, body: Any) -> Response:
        group = self._get_group(request.path_params["id"])
        members = [self._user_rep(self.users[u]) for u in self.group_members.get(group["id"], [])]
        return JSONResponse(_page(members, request))

    def _group_by_path(self, request: Request, body: Any) -> Response:
        path = "/" + request.path_params["path"].strip("/")
        for group in self.groups.values():
            if self._path(group) == path:
                return JSONResponse(self._group_rep(group, False))
        raise _not_found("Group path does not exist")

    # organizations

    def _get_org(self, org_id: str) -> JSON:
        if org_id not in self.organizations:
            raise _not_found("Organization not found")
        return self.organizations[org_id]

    def _check_org(self, body: Any, org_id: str | None) -> JSON:
        if not isinstance(body, dict) or not body.get("name"):
            raise KeycloakError(400, {"errorMessage": "Name is required"})
        alias = body.get("alias") or body["name"]
        for other in self.organizations.values():
            if other["id"] == org_id:
                continue
            if other["name"] == body["name"] or other["alias"] == alias:
                raise _conflict("A organization with the same name or alias already exists")
            taken = {d["name"] for d in other["domains"]} & {
                d.get("name") for d in body.get("domains") or []
            }
            if taken:
                raise _conflict(
                    f"Domain {sorted(taken)[0]} is already linked to another organization"
                )
        domains = [d for d in body.get("domains") or [] if (d.get("name") or "").strip()]
        if not domains and requires_organization_domain(self.version):
            # Keycloak 26.0-26.3: OrganizationProvider.create / update refuse it.
            raise KeycloakError(400, {"errorMessage": "You must provide at least one domain"})
        return {
            "name": body["name"],
            "alias": alias,
            "enabled": bool(body.get("enabled", True)),
            "description": body.get("description"),
            "redirectUrl": body.get("redirectUrl"),
            "attributes": body.get("attributes") or {},
            "domains": [
                {"name": d["name"], "verified": bool(d.get("verified"))}
                for d in body.get("domains") or []
            ],
        }

    def _organizations(self, request: Request, body: Any) -> Response:
        if request.method == "POST":
            fields = self._check_org(body, None)
            org_id = str(uuid.uuid4())
            self.organizations[org_id] = {"id": org_id, **fields}
            self.organization_members[org_id] = []
            self.organization_idps[org_id] = []
            return self._created(request, org_id)
        search = request.query_params.get("search")
        exact = _flag(request, "exact", False)
        found = []
        for org in self.organizations.values():
            names = [org["name"], *(d["name"] for d in org["domains"])]
            if search and not any(
                (n == search) if exact else (search.lower() in n.lower()) for n in names
            ):
                continue
            if _matches_q(org, request.query_params.get("q")):
                found.append(org)
        return JSONResponse(_page(found, request))

    def _organization(self, request: Request, body: Any) -> Response:
        org = self._get_org(request.path_params["id"])
        if request.method == "GET":
            return JSONResponse(self._org_rep(org))
        if request.method == "DELETE":
            del self.organizations[org["id"]]
            return Response(status_code=204)
        fields = self._check_org(body, org["id"])
        if fields["alias"] != org["alias"]:
            raise KeycloakError(400, {"errorMessage": "Cannot change the alias"})
        org.update(fields)
        return Response(status_code=204)

    def _org_members(self, request: Request, body: Any) -> Response:
        org = self._get_org(request.path_params["id"])
        members = self.organization_members[org["id"]]
        if request.method == "POST":
            user_id = str(body).strip().strip('"')
            if user_id not in self.users:
                raise _not_found("User does not exist")
            if user_id in members:
                raise _conflict("User is already a member of the organization.")
            members.append(user_id)
            return Response(status_code=201)
        listed = [{**self._user_rep(self.users[u]), "membershipType": "UNMANAGED"} for u in members]
        return JSONResponse(_page(listed, request))

    def _org_member(self, request: Request, body: Any) -> Response:
        org = self._get_org(request.path_params["id"])
        user_id = request.path_params["user"]
        if user_id not in self.organization_members[org["id"]]:
            raise _not_found("User is not a member of the organization")
        if request.method == "GET":
            return JSONResponse({**self.users[user_id], "membershipType": "UNMANAGED"})
        self.organization_members[org["id"]].remove(user_id)
        return Response(status_code=204)

    def _user_organizations(self, request: Request, body: Any) -> Response:
        user = self._get_user(request.path_params["id"])
        return JSONResponse(
            [
                o
                for o in self.organizations.values()
                if user["id"] in self.organization_members[o["id"]]
            ]
        )

    def _org_idps(self, request: Request, body: Any) -> Response:
        org = self._get_org(request.path_params["id"])
        linked = self.organization_idps[org["id"]]
        if request.method == "POST":
            alias = str(body).strip().strip('"')
            if alias not in self.idps:
                raise _not_found(f"Identity provider with alias {alias} not found")
            if alias in linked or any(alias in v for v in self.organization_idps.values()):
                raise _conflict("Identity provider already associated to an organization")
            linked.append(alias)
            return Response(status_code=204)
        return JSONResponse([self._idp_rep(self.idps[a]) for a in linked])

    def _org_idp(self, request: Request, body: Any) -> Response:
        org = self._get_org(request.path_params["id"])
        alias = request.path_params["alias"]
        if alias not in self.organization_idps[org["id"]]:
            raise _not_found("Identity provider not found")
        self.organization_idps[org["id"]].remove(alias)
        return Response(status_code=204)

    # identity providers

    def _idps(self, request: Request, body: Any) -> Response:
        if request.method == "GET":
            return JSONResponse([self._idp_rep(i) for i in self.idps.values()])
        if not isinstance(body, dict) or not body.get("alias") or not body.get("providerId"):
            raise KeycloakError(400, {"errorMessage": "Invalid request"})
        if body["alias"] in self.idps:
            raise _conflict(f"Identity Provider {body['alias']} already exists")
        self.idps[body["alias"]] = {
            **body,
            "internalId": str(uuid.uuid4()),
            "config": dict(body.get("config") or {}),
        }
        return self._created(request, body["alias"])

    def _idp(self, request: Request, body: Any) -> Response:
        alias = request.path_params["alias"]
        if alias not in self.idps:
            raise _not_found("Could not find identity provider")
        if request.method == "GET":
            return JSONResponse(self._idp_rep(self.idps[alias]))
        if request.method == "DELETE":
            del self.idps[alias]
            for linked in self.organization_idps.values():
                if alias in linked:
                    linked.remove(alias)
            return Response(status_code=204)
        if not isinstance(body, dict):
            raise KeycloakError(400, {"errorMessage": "Invalid request"})
        # Keycloak replaces the whole representation: what the PUT leaves out is gone
        # (only the masked client secret stands for the stored one).
        config = dict(body.get("config") or {})
        if config.get("clientSecret") == MASKED_SECRET:
            config["clientSecret"] = self.idps[alias]["config"].get("clientSecret")
        internal_id = self.idps[alias]["internalId"]
        self.idps[alias] = {**body, "alias": alias, "internalId": internal_id, "config": config}
        return Response(status_code=204)
