"""Typed identifiers, so an organisation id cannot be passed where a member id belongs."""

from __future__ import annotations

from typing import NewType
from uuid import UUID

OrgId = NewType("OrgId", UUID)
UnitId = NewType("UnitId", UUID)
GroupId = NewType("GroupId", UUID)
MemberId = NewType("MemberId", UUID)
ProductId = NewType("ProductId", UUID)
ProductAccountId = NewType("ProductAccountId", UUID)
TokenId = NewType("TokenId", UUID)
