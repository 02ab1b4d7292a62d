"""Which console navigation entry a page belongs to: one, the most specific."""

from __future__ import annotations

from app.web.pages import CONSOLE_NAV, current_nav_entry

HREFS = [href for _, href, _ in CONSOLE_NAV]


def test_a_page_under_two_entries_belongs_to_the_longer_only() -> None:
    assert current_nav_entry(HREFS, "/console/access-reviews/queue") == "/console/access-reviews/queue"
    assert current_nav_entry(HREFS, "/console/access-reviews/queue/1") == "/console/access-reviews/queue"
    assert current_nav_entry(HREFS, "/console/access-reviews") == "/console/access-reviews"
    assert current_nav_entry(HREFS, "/console/access-reviews/new") == "/console/access-reviews"


def test_the_overview_is_only_itself_and_a_prefix_of_a_word_is_not_a_parent() -> None:
    assert current_nav_entry(HREFS, "/console") == "/console"
    assert current_nav_entry(HREFS, "/console/members/abc") == "/console/members"
    assert current_nav_entry(["/console/api"], "/console/api-tokens") is None
    assert current_nav_entry(HREFS, "/account") is None


def test_every_navigation_page_marks_exactly_one_entry() -> None:
    for href in HREFS:
        assert current_nav_entry(HREFS, href) == href


def test_a_field_reads_as_words_not_as_its_code() -> None:
    from app.web.pages import field_label

    assert field_label("unit_id") == "Unit"
    assert field_label("manager_email") == "Manager email"
    assert field_label("csv") == "CSV"
    assert field_label("name") == "Name"
