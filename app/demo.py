"""Demo data: a school and an employer with a few hundred members, for trying Tenantry out.

Seeding is idempotent (an organisation that exists is left as it is); credentials are
minted fresh at every start and printed, never stored in the repository.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from policies.resolve import TargetKind
from tenants import db
from tenants.access import service as access
from tenants.access.models import AccessGrant, DataCategory
from tenants.actors import Actor, ActorKind, system_actor
from tenants.audit import service as audit
from tenants.departures import service as departures
from tenants.departures.models import Departure, DepartureStatus, DepartureStep, StepStatus
from tenants.departures.service import step_key
from tenants.domains.rules import DomainProof
from tenants.groups.models import Group, GroupMembership
from tenants.ids import OrgId
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.organisations import service as organisations
from tenants.organisations.models import OrganisationKind
from tenants.permissions import Permission, Role, permissions_of
from tenants.policy import service as policy
from tenants.products.models import Product, ProductAccount, ProductAccountStatus
from tenants.reviews import rules as review_rules
from tenants.reviews import service as reviews
from tenants.sessions import passwords
from tenants.tokens import service as tokens
from tenants.units import service as units
from tenants.units.models import Unit

FIRST = [
    "Ada",
    "Ben",
    "Chloé",
    "Dmitri",
    "Esra",
    "Farid",
    "Grace",
    "Hiro",
    "Inès",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Oscar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tove",
    "Uma",
    "Vik",
    "Wen",
    "Xavier",
    "Yara",
    "Zoltan",
]
LAST = [
    "Okafor",
    "Larsen",
    "Moreau",
    "Ivanova",
    "Yilmaz",
    "Haddad",
    "Hopper",
    "Tanaka",
    "Silva",
    "Berg",
    "Mensah",
    "Novak",
    "García",
    "Rahman",
    "Lindqvist",
    "Patel",
    "Murphy",
    "Rossi",
    "Kowalski",
    "Nguyen",
    "Schmidt",
    "Kaur",
    "Dubois",
    "Costa",
]

Tree = dict[str, "Tree"]


@dataclass(frozen=True)
class DemoOrganisation:
    slug: str
    name: str
    kind: OrganisationKind
    domain: str
    tree: Tree
    groups: list[tuple[str, int]]
    products: list[tuple[str, str]]
    members: int


SCHOOL = DemoOrganisation(
    slug="demo-school",
    name="Northfield School",
    kind=OrganisationKind.SCHOOL,
    domain="northfield.example",
    tree={
        "Staff": {
            "Teaching": {
                "Mathematics": {},
                "Sciences": {"Physics": {}, "Biology": {}},
                "Languages": {},
            },
            "Administration": {"Admissions": {}, "Finance office": {}},
        },
        "Students": {f"Year {y}": {f"Class {y}{c}": {} for c in "AB"} for y in range(7, 12)},
    },
    groups=[("Safeguarding leads", 50), ("Exam board", 30), ("Sixth-form mentors", 10)],
    products=[("mail", "Mail"), ("drive", "Drive"), ("classroom", "Classroom"), ("chat", "Chat")],
    members=220,
)
EMPLOYER = DemoOrganisation(
    slug="demo-employer",
    name="Acme Corporation",
    kind=OrganisationKind.EMPLOYER,
    domain="acme.example",
    tree={
        "Engineering": {
            "Platform": {"Storage": {}, "Identity": {}},
            "Apps": {"Mobile": {}, "Web": {}},
        },
        "Sales": {"EMEA": {"Nordics": {}, "DACH": {}}, "Americas": {}},
        "Operations": {"Finance": {}, "People": {}, "Legal": {}},
    },
    groups=[("Managers", 40), ("Contractors", 20), ("Works council", 60)],
    products=[("mail", "Mail"), ("drive", "Drive"), ("chat", "Chat"), ("crm", "CRM")],
    members=160,
)
DEMO_ORGANISATIONS = (SCHOOL, EMPLOYER)


@dataclass(frozen=True)
class DemoCredentials:
    slug: str
    name: str
    api_token: str
    admin_email: str
    member_email: str
    password: str
    #: The other roles, by role name (admin, privacy_officer, helpdesk, auditor): email.
    roles: dict[str, str] = field(default_factory=dict)


async def seed_organisation(spec: DemoOrganisation, *, rng: random.Random) -> None:
    """Create one demo organisation with its tree, groups, products and members."""
    actor = system_actor("demo-seed")
    # One transaction: a seed interrupted half-way (a killed first start) leaves nothing,
    # so the next start seeds again instead of finding a half-made organisation.
    new_id = OrgId(uuid.uuid4())
    async with db.tenant_transaction(new_id):
        org = await organisations.create_organisation(
            slug=spec.slug,
            name=spec.name,
            kind=spec.kind,
            domains=[spec.domain],
            actor=actor,
            org_id=new_id,
            # The example domains cannot be proven in DNS: marked "verified by seed".
            domains_proof=DomainProof.SEED,
        )
        root = await Unit.get(parent_id=None)
        leaves: list[Unit] = []

        async def build(parent: Unit, tree: Tree) -> None:
            for name, children in tree.items():
                unit = await units.create_unit(name, parent.id, actor=actor)
                if children:
                    await build(unit, children)
                else:
                    leaves.append(unit)

        await build(root, spec.tree)
        groups = [
            await Group.create(tenant_id=org.id, name=name, priority=priority, description="")
            for name, priority in spec.groups
        ]
        products = [
            await Product.create(tenant_id=org.id, key=key, name=name, description="")
            for key, name in spec.products
        ]
        head = Member(
            id=uuid.uuid4(),
            tenant_id=org.id,
            email=f"admin@{spec.domain}",
            name="Demo Admin",
            unit_id=root.id,
            roles=[Role.OWNER.value],
            status=MemberStatus.ACTIVE,
            status_changed_at=datetime.now(UTC),
        )
        people: list[Member] = [head]
        managers: dict[uuid.UUID, uuid.UUID] = {}
        used: set[str] = {head.email}
        for index in range(spec.members):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            local = (
                unicodedata.normalize("NFKD", f"{first}.{last}".lower())
                .encode("ascii", "ignore")
                .decode()
            )
            email = f"{local}@{spec.domain}"
            if email in used:
                email = email.replace("@", f"{index}@")
            used.add(email)
            unit = leaves[index % len(leaves)]
            status = (
                MemberStatus.ACTIVE
                if index % 23
                # Departing members come from a real departure (below), with a plan.
                else rng.choice([MemberStatus.INVITED, MemberStatus.SUSPENDED])
            )
            member = Member(
                id=uuid.uuid4(),
                tenant_id=org.id,
                email=email,
                name=f"{first} {last}",
                unit_id=unit.id,
                manager_id=managers.get(unit.id, head.id),
                roles=[Role.MEMBER.value],
                status=status,
                status_changed_at=datetime.now(UTC) - timedelta(days=rng.randint(0, 700)),
            )
            managers.setdefault(unit.id, member.id)
            people.append(member)
        people[1].roles = [Role.ADMIN.value]
        people[2].roles = [Role.PRIVACY_OFFICER.value]
        people[3].roles = [Role.HELPDESK.value]
        people[4].roles = [Role.AUDITOR.value]
        for holder in people[1:5]:
            holder.status = MemberStatus.ACTIVE  # the demo prints them: they can sign in
        await Member.bulk_create(people, batch_size=500)
        await GroupMembership.bulk_create(
            [
                GroupMembership(tenant_id=org.id, group_id=group.id, member_id=m.id)
                for group in groups
                for m in rng.sample(people, k=min(len(people), 12))
            ],
            batch_size=500,
        )
        await ProductAccount.bulk_create(
            [
                ProductAccount(
                    tenant_id=org.id,
                    member_id=m.id,
                    product_id=p.id,
                    status=ProductAccountStatus.ASSIGNED,
                )
                for m in people
                for p in products
                if p.key in ("mail", "drive") or rng.random() < 0.6
            ],
            batch_size=1000,
        )
        await _seed_content(org.id, people, products, rng)
        leaver = next(
            m for m in people[10:] if m.status == MemberStatus.ACTIVE and m.manager_id is not None
        )
        await departures.start_departure(
            leaver.id,
            last_day=datetime.now(UTC).date() + timedelta(days=21),
            successor_id=None,
            reason="end of contract (demo)",
            actor=actor,
        )
        await _seed_governance(root, head, actor)
        await audit.record(
            "demo.seeded",
            "organisation",
            org.id,
            actor=actor,
            after={
                "members": len(people),
                "units": len(leaves),
                "groups": len(groups),
                "products": len(products),
            },
        )


async def _seed_governance(root: Unit, head: Member, actor: Actor) -> None:
    """What a new admin should find in the demo beside the directory: a policy change
    scheduled ten days ahead (members see it under Coming changes, and are emailed a week
    before), and an access review of admin roles open for the demo admin to decide."""
    today = datetime.now(UTC).date()
    await policy.set_rule(
        policy.RuleInput(
            TargetKind.UNIT,
            root.id,
            "personalisation.recommendations",
            False,
            True,
            "Recommendations are paused while the new privacy notice is prepared.",
            effective_from=datetime.combine(today + timedelta(days=10), time(), tzinfo=UTC),
        ),
        actor=actor,
    )
    await reviews.create_review(
        review_rules.CampaignDraft(
            name="Quarterly admin recertification",
            scopes=(review_rules.ScopeKind.ADMIN_ROLES,),
            reviewer_rule=review_rules.ReviewerRule.NAMED,
            named_reviewers=(head.id,),
            starts_on=today,
            due_on=today + timedelta(days=14),
            recurrence=review_rules.Recurrence(3, review_rules.RecurrenceUnit.MONTHS),
            default_on_due=review_rules.DueDefault.KEEP,
        ),
        actor=actor,
    )


#: Content items per member and product: work documents, and a few personal purchases.
CONTENT_SQL = """
INSERT INTO content_items (id, tenant_id, member_id, product_id, external_id, title, kind,
                           size, legal_hold, status, transfer_count, item_created_at,
                           created_at, updated_at)
SELECT gen_random_uuid(), $1, m.id, $2, $3 || '-' || m.id || '-' || g,
       CASE WHEN g % 7 = 0 THEN $4 || ' (personal) #' || g ELSE $5 || ' #' || g END,
       CASE WHEN g % 7 = 0 THEN 'personal' ELSE 'organisation' END,
       (g * 7919) % 5000000, g % 29 = 0, 'active', 0, now() - g * interval '3 days',
       now(), now()
  FROM unnest($6::uuid[]) AS m(id), generate_series(1, $7) AS g
 WHERE EXISTS (SELECT 1 FROM product_accounts a
                WHERE a.tenant_id = $1 AND a.product_id = $2 AND a.member_id = m.id)
"""

CONTENT_TITLES = {
    "mail": ("Mailbox folder", "Newsletter subscription"),
    "drive": ("Document", "Photo album"),
    "chat": ("Channel history", "Sticker pack"),
    "classroom": ("Course material", "Study notes"),
    "crm": ("Account notes", "Saved search"),
}


async def _seed_content(
    org_id: uuid.UUID, people: list[Member], products: list[Product], rng: random.Random
) -> None:
    """Items for the members who hold products, in the products they have an account in
    (a member's leaving page listed items of a product they had no account in), so
    departures have something to plan."""
    holders = [m.id for m in people if m.status != MemberStatus.INVITED]
    for product in products:
        work, personal = CONTENT_TITLES.get(product.key, ("Item", "Personal item"))
        await db.connection().execute_query(
            CONTENT_SQL,
            [org_id, product.id, product.key, personal, work, holders, rng.randint(8, 16)],
        )


async def seed_demo(*, seed: int = 7) -> list[DemoCredentials]:
    """Seed the demo organisations that do not exist yet; mint fresh API tokens for all."""
    rng = random.Random(seed)
    credentials = []
    for spec in DEMO_ORGANISATIONS:
        org_id = await organisations.id_by_slug(spec.slug)
        if org_id is None:
            await seed_organisation(spec, rng=rng)
            org_id = await organisations.id_by_slug(spec.slug)
        assert org_id is not None
        actor = system_actor("demo-seed")
        password = passwords.generate_password()
        async with db.tenant_transaction(org_id):
            _, text = await tokens.create_token(
                "demo (printed at start)",
                [p.value for p in Permission],
                expires_in=timedelta(days=1),
                actor=actor,
            )
            await organisations.set_local_sign_in(True, actor=actor)
            admin = await Member.get(email=f"admin@{spec.domain}")
            candidates = await Member.filter(status=MemberStatus.ACTIVE).order_by("email").limit(50)
            member = next(m for m in candidates if m.roles == [Role.MEMBER.value])
            # The seed gives each of these roles to one member (see seed_organisation).
            staff = await Member.filter(status=MemberStatus.ACTIVE).order_by("email")
            others = {}
            for role in (Role.ADMIN, Role.PRIVACY_OFFICER, Role.HELPDESK, Role.AUDITOR):
                holder = next((m for m in staff if m.roles == [role.value]), None)
                if holder is not None:
                    others[role.value] = holder
            for person in (admin, member, *others.values()):
                await passwords.set_password(person, password, break_glass=False, actor=actor)
            await _hurry_departure(actor)
            if "admin" in others and not await AccessGrant.exists():
                # One request waiting for the privacy officer's approval (four eyes).
                asker = others["admin"]
                await access.request_access(
                    access.NewGrant(
                        member_id=member.id,
                        unit_id=None,
                        categories=[DataCategory.FILES],
                        product_ids=None,
                        justification="Demo: files needed for a handover.",
                        duration_hours=8,
                    ),
                    permissions=permissions_of(asker.roles),
                    actor=Actor(ActorKind.MEMBER, str(asker.id), asker.name),
                )
        credentials.append(
            DemoCredentials(
                spec.slug,
                spec.name,
                text,
                admin.email,
                member.email,
                password,
                {role: m.email for role, m in others.items()},
            )
        )
    return credentials


#: How long after a demo start each step of the demo departure runs (its real schedule
#: counts in days; the demo's is compressed so its progress can be watched).
DEMO_STEP_DELAYS = {
    "suspend": timedelta(minutes=1),
    "transfer": timedelta(minutes=1),
    "export_until": timedelta(minutes=3),
    "purge": timedelta(minutes=5),
}


async def _hurry_departure(actor: Actor) -> None:
    """Bring the organisation's running demo departure forward so it suspends, transfers
    and purges within minutes of this start; when none is running (the last one finished),
    start another for an active member with a manager."""
    running = await Departure.filter(status=DepartureStatus.RUNNING).order_by("created_at").first()
    if running is None:
        candidates = (
            await Member.filter(status=MemberStatus.ACTIVE, manager_id__isnull=False)
            .order_by("email")
            .limit(50)
        )
        leaver = next((m for m in candidates[10:] if m.roles == [Role.MEMBER.value]), None)
        if leaver is None:
            return
        running = await departures.start_departure(
            leaver.id,
            last_day=datetime.now(UTC).date(),
            successor_id=None,
            reason="end of contract (demo)",
            actor=actor,
        )
    suspended = await DepartureStep.filter(
        departure_id=running.id, name="suspend", status=StepStatus.DONE
    ).exists()
    if suspended:
        return
    now = datetime.now(UTC)
    at = {name: now + delay for name, delay in DEMO_STEP_DELAYS.items()}
    # Its last day is today: a departure whose steps ran today said "last day" three weeks
    # ahead, with the member already erased.
    await Departure.filter(id=running.id).update(
        last_day=now.date(),
        suspend_at=at["suspend"],
        export_until=at["export_until"],
        purge_at=at["purge"],
    )
    for name in ("suspend", "transfer", "purge"):
        await DepartureStep.filter(
            departure_id=running.id, name=name, status=StepStatus.PENDING
        ).update(due_at=at[name])
    await db.connection().execute_query(
        "UPDATE jobs SET run_at = $2 WHERE tenant_id = $1 AND key = $3 AND status = 'queued'",
        [db.current_org(), at["suspend"], step_key(running.id, "suspend")],
    )
