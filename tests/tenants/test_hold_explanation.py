"""What a member is told about held items, as a pure function: categories from the items,
the obligation, each member-facing text once, the earliest review date; and the rules a
new hold's text and review date must meet."""

from __future__ import annotations

from datetime import date, timedelta

from tenants.content.holds import OBLIGATION, HeldGroup, KeptCategory, explain_holds, hold_problems
from tenants.content.models import ContentKind
from tenants.errors import FieldProblem

TODAY = date(2026, 6, 1)


def test_nothing_held_means_nothing_to_tell() -> None:
    assert explain_holds([]) is None
    assert explain_holds([HeldGroup("Drive", ContentKind.PERSONAL, 0, "x", TODAY)]) is None


def test_categories_texts_and_the_earliest_review_date() -> None:
    told = explain_holds([
        HeldGroup("Drive", ContentKind.PERSONAL, 3, "Kept for a tax audit.", date(2027, 1, 1)),
        HeldGroup("Drive", ContentKind.PERSONAL, 2, "Kept for a tax audit.", date(2026, 9, 1)),
        HeldGroup("Mail", ContentKind.ORGANISATION, 7, " Kept for a legal claim. ", None),
    ])

    assert told is not None
    assert told.categories == (
        KeptCategory("personal items in Drive", 5),
        KeptCategory("work content in Mail", 7),
    )
    assert told.count == 12
    assert told.obligation == OBLIGATION and "legal obligation" in told.obligation
    assert told.texts == ("Kept for a legal claim.", "Kept for a tax audit.")
    assert told.review_on == date(2026, 9, 1) and told.review_unknown
    text = told.as_text()
    assert "personal items in Drive (5)" in text and "reviewed by 2026-09-01" in text


def test_holds_without_a_review_date_say_so() -> None:
    told = explain_holds([HeldGroup("Drive", ContentKind.PERSONAL, 1, None, None)])
    assert told is not None and told.review_on is None and told.texts == ()
    assert "not yet set a date" in told.as_text()


def test_a_new_hold_needs_a_clean_text_and_a_future_review_date() -> None:
    def fields(text: str | None, review: date | None) -> set[str]:
        return {p.field for p in hold_problems(text, review, TODAY)}

    assert fields("Kept for a legal claim.", date(2026, 6, 2)) == set()
    assert fields("Line one\nline two", date(2030, 1, 1)) == set()
    assert fields(None, None) == {"member_text", "review_on"}
    assert fields("  ", date(2030, 1, 1)) == {"member_text"}
    assert fields("bad \x07 text", date(2030, 1, 1)) == {"member_text"}
    assert fields("x" * 2001, date(2030, 1, 1)) == {"member_text"}
    assert fields("ok", TODAY) == {"review_on"}
    assert fields("ok", date(2020, 1, 1)) == {"review_on"}


def test_a_hold_review_more_than_ten_years_ahead_is_refused_naming_review_on() -> None:
    """Capped like a departure's last day: 9999-12-31 is a typo, not a review date."""
    latest = TODAY + timedelta(days=3650)
    assert hold_problems("ok", latest, TODAY) == []
    assert hold_problems("ok", latest + timedelta(days=1), TODAY) == [
        FieldProblem("review_on", f"must be {latest.isoformat()} or earlier")
    ]
    assert [p.field for p in hold_problems("ok", date(9999, 12, 31), TODAY)] == ["review_on"]
