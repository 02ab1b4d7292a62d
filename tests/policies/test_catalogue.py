from __future__ import annotations

import pytest

from policies.catalogue import BUILTIN, CatalogueError, Purpose, Setting, SettingType


def test_the_builtin_catalogue_covers_the_privacy_statement_purposes() -> None:
    assert {s.purpose for s in BUILTIN} == set(Purpose)
    assert (
        BUILTIN["cookies.necessary"].required and not BUILTIN["cookies.necessary"].member_choosable
    )
    assert BUILTIN["personalisation.recommendations"].off_effect.startswith("Recommendations")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("advertising.personalised_ads", "yes"),
        ("diagnostics.level", "full"),
        ("social.activity_visibility", 1),
    ],
)
def test_values_that_do_not_fit_are_refused(key: str, value: object) -> None:
    with pytest.raises(CatalogueError):
        BUILTIN.validate(key, value)


def test_an_unknown_setting_is_refused_naming_the_setting_field() -> None:
    with pytest.raises(CatalogueError) as refused:
        BUILTIN.validate("no.such", True)
    assert refused.value.field == "setting"


def test_products_declare_settings_but_cannot_take_a_key_or_change_a_type() -> None:
    mine = Setting(
        "chat.read_receipts",
        SettingType.BOOL,
        True,
        "Read receipts",
        "Others see when you read.",
        Purpose.SOCIAL,
        frozenset({"interaction"}),
        product="chat",
    )
    extended = BUILTIN.with_declared([mine])
    assert "chat.read_receipts" in extended and extended.version != BUILTIN.version
    clash = Setting(
        "cookies.analytics",
        SettingType.BOOL,
        True,
        "x",
        "x",
        Purpose.COOKIES,
        frozenset(),
        product="chat",
    )
    with pytest.raises(CatalogueError, match="already declared"):
        BUILTIN.with_declared([clash])
    retyped = Setting(
        "chat.read_receipts",
        SettingType.INT,
        1,
        "x",
        "x",
        Purpose.SOCIAL,
        frozenset(),
        product="chat",
    )
    with pytest.raises(CatalogueError):
        extended.with_declared([retyped])


def test_the_version_changes_only_when_a_definition_changes() -> None:
    assert BUILTIN.with_declared([]).version == BUILTIN.version
