"""Identifiers and free text: NFKC, full-width input, control characters."""

import pytest

from hogo.domain.dates import to_instant
from hogo.domain.text import clean_display_text, normalise_dept_code, normalise_username


def test_login_names_are_compared_after_nfkc():
    assert normalise_username("ＴＡＮＡＫＡ") == "tanaka"


def test_creating_a_full_width_name_is_refused_with_the_half_width_form_named():
    with pytest.raises(ValueError, match=r"half-width.*'tanaka'"):
        normalise_username("ｔａｎａｋａ", strict=True)
    with pytest.raises(ValueError, match=r"half-width.*'JINJI'"):
        normalise_dept_code("ＪＩＮＪＩ", strict=True)


@pytest.mark.parametrize("bad", ["a", "田中", "x y", "-lead", "a" * 64, ""])
def test_bad_usernames_are_refused(bad):
    with pytest.raises(ValueError):
        normalise_username(bad)


def test_display_text_refuses_control_characters_and_blank():
    assert clean_display_text(" 人事課 ") == "人事課"
    with pytest.raises(ValueError, match="control"):
        clean_display_text("a\x07b")
    with pytest.raises(ValueError, match="empty"):
        clean_display_text("   ")


def test_a_date_until_means_through_the_end_of_that_day_in_tokyo_SEC_129():
    import datetime as dt

    end = to_instant(dt.date(2027, 3, 31), "Asia/Tokyo", end_of_day=True)
    assert end == dt.datetime(2027, 3, 31, 15, 0, tzinfo=dt.UTC)
