"""Which time zone names a member may choose (tenants/members/preferences.py): pure."""

from __future__ import annotations

import pytest

from tenants.members.preferences import is_time_zone, time_zone_names


@pytest.mark.parametrize(
    "name", ["Europe/Paris", "Pacific/Kiritimati", "America/New_York", "UTC", "Asia/Calcutta"]
)
def test_iana_zones_and_the_links_browsers_report_are_time_zones(name: str) -> None:
    assert is_time_zone(name)


@pytest.mark.parametrize(
    "name",
    ["right/Europe/Paris", "posix/Europe/Paris", "localtime", "posixrules", "Factory",
     "/usr/share/zoneinfo/UTC", "Europe/../UTC", "europe/paris", ""],
)
def test_leap_second_trees_and_files_that_are_not_zones_are_refused(name: str) -> None:
    assert not is_time_zone(name)


def test_no_name_offered_counts_leap_seconds_or_is_a_placeholder() -> None:
    names = time_zone_names()
    assert "Europe/Paris" in names
    assert not any(n.startswith(("right/", "posix/")) for n in names)
    assert not names & {"localtime", "posixrules", "Factory"}
