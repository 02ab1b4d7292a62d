"""Sealing audit events' personal fields (pure): what is sealed, for whom, and what an
erased key leaves."""

from __future__ import annotations

import os
import uuid

from tenants.actors import Actor, ActorKind, system_actor
from tenants.privacy import shredding

ORG = str(uuid.uuid4())
MIA = str(uuid.uuid4())


def test_a_sealed_value_opens_with_its_members_key_only() -> None:
    key = os.urandom(32)
    sealed = shredding.seal(key, ORG, MIA, {"street": "1 Lantern Row"})
    assert "Lantern" not in sealed and shredding.sealed_for(sealed) == MIA
    assert shredding.unseal(key, ORG, sealed) == {"street": "1 Lantern Row"}
    assert shredding.unseal(os.urandom(32), ORG, sealed) == shredding.ERASED_VALUE
    assert shredding.unseal(None, ORG, sealed) == shredding.ERASED_VALUE
    # Moved to another organisation's event, it does not open.
    assert shredding.unseal(key, str(uuid.uuid4()), sealed) == shredding.ERASED_VALUE


def test_any_json_value_opens_as_it_was_sealed() -> None:
    """Beyond what the fast encoder takes (integers past 64 bits), and text of any script."""
    key = os.urandom(32)
    for value in ({"n": 2**70, "m": -(2**64)}, ["Zoë", "日本", "\u202e", None, 1.5], "", 0):
        assert shredding.unseal(key, ORG, shredding.seal(key, ORG, MIA, value)) == value


def test_the_subject_is_the_target_member_else_the_member_named_else_the_actor() -> None:
    person = Actor(ActorKind.MEMBER, MIA, "Mia")
    other = str(uuid.uuid4())
    assert shredding.subjects_of(person, "member", other, None, {}) == shredding.Subjects(
        MIA, other)
    assert shredding.subjects_of(system_actor("x"), "departure", "d", None,
                                 {"member_id": other}).subject == other
    assert shredding.subjects_of(person, "session", "s", None, {}).subject == MIA
    assert shredding.subjects_of(system_actor("x"), "product", "p", None, {}) == (
        shredding.Subjects(None, None))


def test_only_personal_keys_are_sealed_except_in_scim_events() -> None:
    key = os.urandom(32)
    snapshot = {"email": "mia@x.example", "status": "active", "reason": "left", "roles": []}
    sealed = shredding.seal_snapshot(snapshot, key, ORG, MIA, all_but_listed=False)
    assert sealed is not None
    assert sealed["status"] == "active" and sealed["roles"] == []
    assert shredding.sealed_for(sealed["email"]) == MIA
    assert shredding.sealed_for(sealed["reason"]) == MIA
    scim = shredding.seal_snapshot({"phoneNumbers": [{"value": "+1"}], "status": "x",
                                    "anything": "at all"}, key, ORG, MIA, all_but_listed=True)
    assert scim is not None and scim["status"] == "x"
    assert shredding.sealed_for(scim["anything"]) == MIA
    assert shredding.sealed_for(scim["phoneNumbers"]) == MIA
