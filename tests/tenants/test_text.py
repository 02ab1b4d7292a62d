"""The one text policy (tenants.text): what names and free text may hold."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants import text
from tenants.errors import InvalidInputError

CONTROLS = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))]
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]


@pytest.mark.parametrize("char", CONTROLS)
def test_every_c0_and_c1_control_character_is_refused_in_a_name(char: str) -> None:
    with pytest.raises(text.TextError, match=f"U\\+{ord(char):04X}"):
        text.clean_name(f"a{char}b")


@pytest.mark.parametrize("char", [c for c in CONTROLS if c not in "\n\t\r"])
def test_control_characters_other_than_line_breaks_and_tabs_are_refused_in_free_text(
    char: str,
) -> None:
    with pytest.raises(text.TextError, match=f"U\\+{ord(char):04X}"):
        text.clean_free_text(f"a{char}b")


def test_free_text_keeps_line_breaks_and_tabs_and_turns_carriage_returns_into_breaks() -> None:
    assert text.clean_free_text("a\nb\tc") == "a\nb\tc"
    assert text.clean_free_text("a\r\nb\rc") == "a\nb\nc"


@pytest.mark.parametrize("char", BIDI)
def test_bidirectional_controls_are_refused_in_names_and_overrides_in_free_text(
    char: str,
) -> None:
    with pytest.raises(text.TextError, match="bidirectional"):
        text.clean_name(f"txt{char}exe")
    if char in ("\u202d", "\u202e"):  # an override shows what follows it reversed
        with pytest.raises(text.TextError, match=r"U\+202[DE]"):
            text.clean_free_text(f"txt{char}exe")
    else:  # embeddings and isolates: mixed right-to-left writing uses them
        assert text.clean_free_text(f"txt{char}exe") == f"txt{char}exe"


def test_marks_next_to_the_bidi_ranges_are_not_refused() -> None:
    for char in ("\u2029", "\u202f", "\u2065", "\u206a", "\u00a0", "\u00e9"):
        assert text.clean_name(f"a{char}b") == unicodedata.normalize("NFC", f"a{char}b")


def test_characters_just_outside_the_control_and_surrogate_ranges_are_text() -> None:
    # A space (U+0020), a tilde (U+007E), the no-break space (U+00A0) and the neighbours
    # of the surrogates: U+D7FF below them and the first private-use character U+E000.
    for char in (" ", "~", "\u00a0", "\ud7ff", "\ue000"):
        for clean in (text.clean_name, text.clean_free_text):
            assert clean(f"a{char}b") == f"a{char}b"
        assert text.is_storable(f"a{char}b")


@pytest.mark.parametrize("char", SURROGATES)
def test_a_lone_surrogate_is_refused_everywhere(char: str) -> None:
    for clean in (text.clean_name, text.clean_free_text):
        with pytest.raises(text.TextError, match="surrogate"):
            clean(f"a{char}")
    assert not text.is_storable(f"a{char}")


def test_a_nul_is_refused_everywhere_and_named_as_such() -> None:
    for clean in (text.clean_name, text.clean_free_text):
        with pytest.raises(text.TextError, match="NUL") as refused:
            clean("a\x00b")
        assert str(refused.value) == "contains a NUL character (U+0000), which cannot be stored"
    assert not text.is_storable("a\x00b")
    assert text.is_storable("a\x01\u202eb")


def test_names_come_back_in_nfc() -> None:
    assert text.clean_name("Re\u0301seau") == "R\u00e9seau"
    assert text.clean_free_text("Re\u0301seau") == "R\u00e9seau"


@given(st.text())
def test_a_cleaned_name_is_nfc_and_holds_nothing_the_policy_refuses(value: str) -> None:
    reason = text.problem(value)
    if reason is not None:
        with pytest.raises(text.TextError, match=re.escape(reason)):
            text.clean_name(value)
        return
    cleaned = text.clean_name(value)
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert text.clean_name(cleaned) == cleaned
    assert not any(text.is_control(c) or c in text.BIDI_CONTROLS for c in cleaned)
    cleaned.encode("utf-8")  # valid Unicode: no lone surrogate


@given(st.text(alphabet=st.characters(codec=None)))
def test_cleaned_free_text_is_storable_and_only_keeps_breaks_and_tabs(value: str) -> None:
    try:
        cleaned = text.clean_free_text(value)
    except text.TextError:
        return
    assert text.is_storable(cleaned)
    assert {c for c in cleaned if text.is_control(c)} <= {"\n", "\t"}


@pytest.mark.parametrize(
    ("n", "noun", "plural", "words"),
    [
        (0, "member", None, "0 members"),
        (1, "member", None, "1 member"),
        (2, "member", None, "2 members"),
        (1, "legal hold", None, "1 legal hold"),
        (1, "person", "people", "1 person"),
        (3, "person", "people", "3 people"),
        (0, "person", "people", "0 people"),
    ],
)
def test_a_count_reads_as_english_singular_only_for_one(
    n: int, noun: str, plural: str | None, words: str
) -> None:
    assert text.counted(n, noun, plural) == words


def test_problems_gathered_name_every_field_with_the_first_message() -> None:
    from tenants.errors import FieldProblem, InvalidInputError, Problems

    def refuse(field: str) -> str:
        raise InvalidInputError(f"{field} is wrong", fields=[FieldProblem(field, "is wrong")])

    problems = Problems()
    assert problems.check(lambda: "kept", "default") == "kept"
    problems.raise_any()  # nothing gathered: no error
    assert problems.check(lambda: refuse("email"), "default") == "default"
    assert problems.check(lambda: refuse("name"), "") == ""
    with pytest.raises(InvalidInputError) as raised:
        problems.raise_any()
    assert raised.value.message == "email is wrong"
    assert [f.field for f in raised.value.fields] == ["email", "name"]


def test_an_address_takes_the_api_s_normal_form_or_is_not_one() -> None:
    from tenants.members.addresses import normal_email

    assert normal_email("Re\u0301x@Acme.Example") == "r\u00e9x@acme.example"
    assert normal_email("not an address") is None
    assert normal_email("a@" + "b" * 64 + ".example") is None  # a label past 63 characters


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12))
def test_the_document_s_patterns_say_what_the_policy_takes(value: str) -> None:
    """The API document states the policy as patterns (JSON Schema); whatever a client
    generates from them, the service takes, and only that (lone surrogates aside)."""
    assert (re.fullmatch(text.NAME_PATTERN, value) is not None) == (text.problem(value) is None)
    free = value.replace("\r\n", "\n").replace("\r", "\n")
    assert (re.fullmatch(text.FREE_TEXT_PATTERN, value) is not None) == (
        text.problem(free, free=True) is None
    )


def test_a_value_over_its_limit_is_refused_naming_its_field_never_shortened() -> None:
    text.check_length(None, 3, field="name", what="name")
    text.check_length("abc", 3, field="name", what="name")
    with pytest.raises(InvalidInputError) as refused:
        text.check_length("abcd", 3, field="display_name", what="display name")
    assert refused.value.message == "the display name is too long"
    assert [(p.field, p.reason) for p in refused.value.fields] == [
        ("display_name", "has more than 3 characters")
    ]


def test_each_bounded_text_field_of_a_change_is_checked_and_others_pass() -> None:
    limits = {"name": 3, "case_reference": 5}
    text.check_lengths({"name": "abc", "case_reference": "abcde", "other": "x" * 99}, limits)
    text.check_lengths({"name": None, "case_reference": 123456}, limits)  # not text
    with pytest.raises(InvalidInputError) as refused:
        text.check_lengths({"name": "ab", "case_reference": "abcdef"}, limits)
    assert refused.value.message == "the case reference is too long"
    assert [(p.field, p.reason) for p in refused.value.fields] == [
        ("case_reference", "has more than 5 characters")
    ]


@pytest.mark.parametrize("invisible", ["\u200b", "\u200b\ufeff", " \u200b ", "\u3164", "\u00a0\u2060"])
def test_a_name_or_free_text_of_invisible_characters_alone_is_refused(
    invisible: str,
) -> None:
    """Free text too: a deny reason or a justification of zero-width spaces reached its
    reader as an empty box."""
    with pytest.raises(text.TextError, match="has no visible character"):
        text.clean_name(invisible)
    for blank in (invisible, f"{invisible}\n\t{invisible}"):
        with pytest.raises(text.TextError, match="has no visible character"):
            text.clean_free_text(blank)
    assert text.clean_free_text(f"ok\n{invisible}") == f"ok\n{invisible}"
    assert text.clean_free_text("") == "" and text.clean_free_text(" \n ") == " \n "
    assert text.clean_name(f"Ada{invisible}Lovelace") == f"Ada{invisible}Lovelace"
    assert text.clean_name("") == ""
    assert text.clean_name("  ") == "  "  # spaces alone: empty, as the field's rules say


def test_text_that_shows_nothing_is_blank() -> None:
    from tenants.text import is_blank

    for blank in ("", "   ", "\n\t ", "\u200b", "  \u200b \ufeff\n", "\u2800"):
        assert is_blank(blank), repr(blank)
    for said in ("a", " x ", "\u200bhi", "\u2067evil\u2069"):
        assert not is_blank(said), repr(said)
