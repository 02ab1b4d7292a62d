"""Local passwords are stored as argon2id at a cost that makes guessing dear (the tests
themselves hash at argon2's cheapest, see tests/conftest.py)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError

from tests.conftest import PRODUCT_HASHER

PASSWORD = "correct horse battery"


def test_the_product_hashes_with_argon2id_at_64_mib_and_three_passes() -> None:
    # OWASP's password storage guidance: argon2id, at least 19 MiB with two passes; the
    # product keeps argon2-cffi's RFC 9106 "low memory" profile, above that.
    assert PRODUCT_HASHER.type is Type.ID
    assert PRODUCT_HASHER.memory_cost >= 64 * 1024
    assert PRODUCT_HASHER.time_cost >= 3
    stored = PRODUCT_HASHER.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,")


def test_a_hash_made_at_the_tests_cost_verifies_with_the_products_hasher_and_only_its_password(
) -> None:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    assert PRODUCT_HASHER.verify(cheap, PASSWORD)
    with pytest.raises(VerifyMismatchError):
        PRODUCT_HASHER.verify(cheap, PASSWORD + "!")
