from __future__ import annotations

from dataclasses import replace

import pytest

from policies.catalogue import (
    BUILTIN,
    SAMPLE_DESCRIPTION_MAX,
    SAMPLE_MAX_BYTES,
    SAMPLE_MAX_DEPTH,
    Catalogue,
    CatalogueError,
    Purpose,
    Setting,
    SettingType,
    make_sample,
    sample_key,
)


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


#: The built-in catalogue as members and products see it: key, type, default, whether members
#: may choose, whether the product needs it, data categories, purpose, and whether turning it
#: off is explained. A change here is a change of what the service promises.
BUILTIN_TABLE = [
    ("diagnostics.level", "enum", "required", True, False, ("diagnostic",), "improve_the_product", True),
    ("improvement.use_data", "bool", False, True, False, ("diagnostic", "interaction"), "improve_the_product", False),
    ("personalisation.recommendations", "bool", True, True, False, ("interaction",), "personalisation", True),
    ("advertising.personalised_ads", "bool", False, True, False, ("interaction",), "advertising", True),
    ("advertising.promotional_communications", "bool", False, True, False, ("contact",), "advertising", False),
    ("advertising.relevant_offers", "bool", False, True, False, ("interaction",), "advertising", False),
    ("data.combine_across_products", "bool", True, True, False, ("content", "interaction"), "combining_data", True),
    ("sharing.third_parties_optional", "bool", False, True, False, ("contact", "interaction"),
     "sharing_with_third_parties", False),
    ("sharing.obtain_from_third_parties", "bool", False, True, False, ("contact", "demographic"),
     "sharing_with_third_parties", False),
    ("cookies.necessary", "bool", True, False, True, ("device",), "provide_the_product", True),
    ("cookies.preferences", "bool", True, True, False, ("device",), "cookies", True),
    ("cookies.analytics", "bool", False, True, False, ("device", "interaction"), "cookies", False),
    ("cookies.advertising", "bool", False, True, False, ("device", "interaction"), "cookies", False),
    ("cookies.third_party", "bool", False, True, False, ("device", "interaction"), "cookies", False),
    ("cookies.web_beacons", "bool", False, True, False, ("device", "interaction"), "cookies", False),
    ("social.activity_visibility", "enum", "network", True, False, ("interaction",), "social_features", True),
]


def test_the_builtin_catalogue_is_the_one_the_service_promises() -> None:
    described = [
        (d["key"], d["type"], d["default"], d["member_choosable"], d["required"],
         tuple(d["data_categories"]), d["purpose"], bool(d["off_effect"]))
        for d in (s.describe() for s in BUILTIN)
    ]
    assert described == BUILTIN_TABLE
    for setting in BUILTIN:
        assert setting.title and setting.description and setting.product is None


def setting(kind: SettingType, **changes: object) -> Setting:
    values: dict[str, object] = {
        "key": "x.s", "type": kind, "default": False, "title": "S", "description": "",
        "purpose": Purpose.SOCIAL, "data_categories": frozenset(),
    }
    values.update(changes)
    return Setting(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("made", "value", "message"),
    [
        (setting(SettingType.BOOL), 1, "x.s takes true or false"),
        (setting(SettingType.ENUM, allowed=("a", "b")), "c", "x.s takes one of a, b"),
        (setting(SettingType.ENUM, allowed=("a", "b")), 1, "x.s takes one of a, b"),
        (setting(SettingType.INT, minimum=1, maximum=5), True, "x.s takes a whole number"),
        (setting(SettingType.INT, minimum=1, maximum=5), "3", "x.s takes a whole number"),
        (setting(SettingType.INT, minimum=1, maximum=5), 0, "x.s takes a number from 1 to 5"),
        (setting(SettingType.INT, minimum=1, maximum=5), 6, "x.s takes a number from 1 to 5"),
        (setting(SettingType.STRING_LIST), "a", "x.s takes a list of strings"),
        (setting(SettingType.STRING_LIST), ["a", 1], "x.s takes a list of strings"),
        (setting(SettingType.STRING_LIST, allowed=("a",)), ["a", "b"], "x.s takes items from a"),
    ],
)
def test_each_value_that_does_not_fit_is_refused_saying_what_fits(
    made: Setting, value: object, message: str
) -> None:
    with pytest.raises(CatalogueError) as refused:
        made.validate(value)
    assert str(refused.value) == message
    assert refused.value.field == "value"


def test_values_that_fit_come_back_in_canonical_form() -> None:
    assert setting(SettingType.BOOL).validate(True) is True
    assert setting(SettingType.ENUM, allowed=("a", "b")).validate("b") == "b"
    bounded = setting(SettingType.INT, minimum=1, maximum=5)
    assert [bounded.validate(v) for v in (1, 5)] == [1, 5]
    assert setting(SettingType.INT).validate(-10**6) == -10**6
    assert setting(SettingType.STRING_LIST).validate(["b", "a", "b"]) == ("b", "a")
    assert setting(SettingType.STRING_LIST, allowed=("a", "b")).validate(("a",)) == ("a",)


def test_off_is_false_the_first_choice_the_minimum_or_nothing() -> None:
    assert setting(SettingType.BOOL).is_off(False) and not setting(SettingType.BOOL).is_off(True)
    assert not setting(SettingType.BOOL).is_off(0)
    enum = setting(SettingType.ENUM, allowed=("off", "on"))
    assert enum.is_off("off") and not enum.is_off("on")
    bounded = setting(SettingType.INT, minimum=2, maximum=5)
    assert bounded.is_off(2) and not bounded.is_off(3)
    listed = setting(SettingType.STRING_LIST)
    assert listed.is_off(()) and not listed.is_off(("a",))


def test_a_declared_setting_clashing_with_a_builtin_names_its_owner_and_type() -> None:
    clash = setting(SettingType.INT, key="cookies.analytics", default=1, product="chat")
    with pytest.raises(CatalogueError) as refused:
        BUILTIN.with_declared([clash])
    assert str(refused.value) == (
        "cookies.analytics is already declared by the built-in catalogue as bool"
    )
    assert refused.value.field == "key"


def test_a_declared_setting_clashing_with_another_products_names_that_product() -> None:
    first = setting(SettingType.BOOL, key="chat.x", product="chat")
    second = setting(SettingType.BOOL, key="chat.x", product="mail")
    with pytest.raises(CatalogueError) as refused:
        BUILTIN.with_declared([first, second])
    assert str(refused.value) == "chat.x is already declared by chat as bool"


def test_a_product_may_declare_its_own_setting_again_and_its_default_must_fit() -> None:
    mine = setting(SettingType.BOOL, key="chat.x", product="chat")
    again = BUILTIN.with_declared([mine]).with_declared([mine])
    assert again["chat.x"] == mine
    assert len(again.settings) == len(BUILTIN.settings) + 1
    with pytest.raises(CatalogueError):
        BUILTIN.with_declared([setting(SettingType.BOOL, key="chat.y", default="yes")])


def test_items_outside_a_lists_choices_are_refused_naming_every_choice() -> None:
    listed = setting(SettingType.STRING_LIST, allowed=("a", "b"), default=())
    with pytest.raises(CatalogueError) as refused:
        listed.validate(["c"])
    assert str(refused.value) == "x.s takes items from a, b"


def test_a_choice_without_choices_is_off_at_any_value_and_lists_describe_as_lists() -> None:
    assert setting(SettingType.ENUM, allowed=()).is_off("anything")
    described = setting(SettingType.STRING_LIST, default=("a", "b")).describe()
    assert described["default"] == ["a", "b"]


def test_the_catalogue_checks_a_value_against_the_setting_it_names() -> None:
    assert BUILTIN.validate("advertising.personalised_ads", True) is True
    assert BUILTIN.validate("diagnostics.level", "off") == "off"
    with pytest.raises(CatalogueError) as refused:
        BUILTIN.validate("no.such", True)
    assert str(refused.value) == "there is no setting 'no.such'"


# --- diagnostic-data samples ------------------------------------------------------------

LEVELS = ("off", "required", "optional")


def test_the_builtin_diagnostics_levels_each_show_what_is_sent() -> None:
    level = BUILTIN["diagnostics.level"]
    assert [s.value for s in level.samples] == list(LEVELS)
    described = level.describe()["samples"]
    assert described["off"] == {"document": {}, "description": level.samples[0].description}
    assert described["optional"]["document"]["feature"] == "export_to_pdf"
    assert all(s.description for s in level.samples)
    assert level.sample_for("required") is level.samples[1]
    assert level.sample_for("nonsense") is None
    assert BUILTIN["cookies.analytics"].describe()["samples"] == {}


def test_a_sample_keeps_canonical_json_and_its_description() -> None:
    made = make_sample("x.s", LEVELS, "optional", {"b": 1, "a": "é"}, "What is sent.")
    assert made.value == "optional" and made.description == "What is sent."
    assert made.document == '{"a":"é","b":1}' and made.parsed() == {"a": "é", "b": 1}


@pytest.mark.parametrize(
    ("value", "document", "description", "field", "message"),
    [
        (
            "loud",
            {},
            "d",
            "samples.loud",
            "x.s has no value 'loud' to show a sample of; it takes off, required, optional",
        ),
        ("off", {}, "  ", "samples.off.description", "a sample needs a plain-language description"),
        ("off", {}, None, "samples.off.description", "a sample needs a plain-language description"),
        (
            "off",
            {},
            "x" * (SAMPLE_DESCRIPTION_MAX + 1),
            "samples.off.description",
            f"a sample's description is at most {SAMPLE_DESCRIPTION_MAX} characters",
        ),
        ("off", [1], "d", "samples.off.document", "a sample's document is a JSON object"),
        (
            "off",
            {"a": "x" * SAMPLE_MAX_BYTES},
            "d",
            "samples.off.document",
            f"a sample's document is at most {SAMPLE_MAX_BYTES} bytes of JSON",
        ),
        (
            "off",
            {"a": "\x00"},
            "d",
            "samples.off.document",
            "a sample holds a NUL character or a lone surrogate, which JSON storage refuses",
        ),
        (
            "off",
            {"\ud800": 1},
            "d",
            "samples.off.document",
            "a sample holds a NUL character or a lone surrogate, which JSON storage refuses",
        ),
        (
            "off",
            {"a": [float("nan")]},
            "d",
            "samples.off.document",
            "a sample holds a number JSON cannot represent",
        ),
        (
            "off",
            {"a": float("-inf")},
            "d",
            "samples.off.document",
            "a sample holds a number JSON cannot represent",
        ),
    ],
)
def test_a_sample_that_does_not_fit_is_refused_naming_its_field(
    value: str, document: object, description: object, field: str, message: str
) -> None:
    with pytest.raises(CatalogueError) as refused:
        make_sample("x.s", LEVELS, value, document, description)
    assert refused.value.field == field and str(refused.value) == message


def test_a_setting_without_values_takes_no_sample_and_says_so() -> None:
    with pytest.raises(CatalogueError) as refused:
        make_sample("x.n", (), "3", {}, "d")
    assert str(refused.value) == "x.n has no value '3' to show a sample of"


def test_samples_may_be_as_large_and_as_deep_as_the_limits_and_no_more() -> None:
    # '{"a":"' + ... + '"}' is 8 bytes of framing; é is 2 bytes in UTF-8.
    make_sample("x.s", LEVELS, "off", {"a": "x" * (SAMPLE_MAX_BYTES - 8)}, "d")
    with pytest.raises(CatalogueError):
        make_sample("x.s", LEVELS, "off", {"a": "é" + "x" * (SAMPLE_MAX_BYTES - 9)}, "d")
    deep: object = 1
    for _ in range(SAMPLE_MAX_DEPTH - 1):
        deep = [deep]
    make_sample("x.s", LEVELS, "off", {"a": deep}, "d")
    with pytest.raises(CatalogueError) as refused:
        make_sample("x.s", LEVELS, "off", {"a": [deep]}, "d")
    assert str(refused.value) == f"a sample nests deeper than {SAMPLE_MAX_DEPTH} levels"
    make_sample("x.s", LEVELS, "off", {"a": {"b": [True, None, 1.5, "s"]}}, "d")


def test_bools_take_samples_for_true_and_false_and_only_choices_take_any() -> None:
    assert sample_key(True) == "true" and sample_key(False) == "false" and sample_key("a") == "a"
    assert setting(SettingType.BOOL).choices() == ("false", "true")
    assert setting(SettingType.ENUM, allowed=("a", "b")).choices() == ("a", "b")
    assert setting(SettingType.INT).choices() == ()
    assert setting(SettingType.STRING_LIST).choices() == ()
    sampled = setting(
        SettingType.BOOL, samples=(make_sample("x.s", ("false", "true"), "true", {}, "d"),)
    )
    assert sampled.sample_for(True) is sampled.samples[0] and sampled.sample_for(False) is None


def test_the_catalogue_version_changes_when_a_sample_changes() -> None:
    base = setting(SettingType.ENUM, allowed=LEVELS, default="off")
    one = replace(base, samples=(make_sample("x.s", LEVELS, "off", {"a": 1}, "d"),))
    other_document = replace(base, samples=(make_sample("x.s", LEVELS, "off", {"a": 2}, "d"),))
    other_text = replace(base, samples=(make_sample("x.s", LEVELS, "off", {"a": 1}, "e"),))
    versions = {Catalogue.of([s]).version for s in (base, one, other_document, other_text)}
    assert len(versions) == 4
    assert Catalogue.of([one]).version == Catalogue.of([replace(one)]).version


def test_what_rests_on_consent_may_be_locked_off_but_never_on() -> None:
    """An organisation cannot consent for its members: advertising, optional sharing and
    cookies that are not needed may be switched off or locked off by a rule, a member may
    switch them on, but no rule may switch them on: locked, consent could not be withdrawn
    (GDPR Art. 7(3)); as a default, it is a box ticked in advance (no consent either)."""
    consented = {s.key for s in BUILTIN if s.consent}
    assert consented == {
        "advertising.personalised_ads", "advertising.promotional_communications",
        "advertising.relevant_offers", "sharing.third_parties_optional", "cookies.analytics",
        "cookies.advertising", "cookies.third_party", "cookies.web_beacons",
    }
    for key in consented:
        setting = BUILTIN[key]
        assert setting.default is False and setting.member_choosable, key
        assert setting.rule_problem(True) is not None  # locked or not (pre-ticked: no consent)
        assert setting.rule_problem(False) is None
        with pytest.raises(CatalogueError) as refused:
            BUILTIN.validate_rule(key, True)
        assert refused.value.field == "value" and "consent" in str(refused.value)
    assert BUILTIN.validate_rule("improvement.use_data", True) is True
    assert BUILTIN["cookies.necessary"].rule_problem(True) is None
