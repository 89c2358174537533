"""Marks and handling restrictions (SEC-5 table 1, SEC-46(2), SEC-48(1), SEC-48(2))."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hogo.domain.files import Classification, Restriction
from hogo.domain.handling import Marks, Use, refusals, strictest

marks_st = st.builds(
    Marks,
    st.builds(Classification, st.integers(1, 3), st.integers(1, 2), st.integers(1, 2)),
    st.frozensets(st.sampled_from(list(Restriction))),
)


def m(c: int = 2, i: int = 1, a: int = 1, *rs: Restriction) -> Marks:
    return Marks(Classification(c, i, a), frozenset(rs))


@given(st.lists(marks_st, min_size=1, max_size=5))
def test_derived_information_is_at_least_as_strict_as_every_source_sec_46_2(sources: list[Marks]) -> None:
    d = strictest(sources)
    for s in sources:
        assert d.classification.confidentiality >= s.classification.confidentiality
        assert d.classification.integrity >= s.classification.integrity
        assert d.classification.availability >= s.classification.availability
        assert s.restrictions <= d.restrictions
    assert d.classification.confidentiality == max(s.classification.confidentiality for s in sources)
    assert d.restrictions == frozenset().union(*(s.restrictions for s in sources))


def test_strictest_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        strictest([])


def test_confidentiality_3_always_requires_encryption_sec_48_2() -> None:
    assert m(3).must_encrypt
    assert not m(2).must_encrypt
    reasons = refusals(m(3), Use.PACKAGE, encrypted=False)
    assert [r.restriction for r in reasons] == [Restriction.ENCRYPTION_REQUIRED]
    assert refusals(m(3), Use.PACKAGE, encrypted=True) == []


def test_only_confidentiality_1_may_be_published_sec_48_1() -> None:
    assert refusals(m(1), Use.PUBLISH, encrypted=False) == []
    assert [r.restriction for r in refusals(m(2), Use.PUBLISH, encrypted=False)] == ["confidentiality"]


@pytest.mark.parametrize(("restriction", "use", "blocked"), [
    (Restriction.NO_COPY, Use.EXPORT, True),
    (Restriction.NO_COPY, Use.WORKING_COPY, True),
    (Restriction.NO_COPY, Use.PACKAGE, True),
    (Restriction.NO_TAKE_OUT, Use.PACKAGE, True),
    (Restriction.NO_TAKE_OUT, Use.EXPORT, False),
    (Restriction.NO_TAKE_OUT, Use.WORKING_COPY, False),
    (Restriction.DESTROY_AFTER_READING, Use.PACKAGE, False),
])
def test_restrictions_are_enforced_for_each_use_sec_5(restriction: Restriction, use: Use, blocked: bool) -> None:
    reasons = refusals(m(2, 1, 1, restriction), use, encrypted=True)
    assert bool(reasons) is blocked
    if blocked:
        assert reasons[0].restriction == restriction
        assert reasons[0].reason_ja and reasons[0].reason_en


def test_no_distribution_blocks_only_provision_outside_the_scope() -> None:
    marks = m(2, 1, 1, Restriction.NO_DISTRIBUTION)
    assert refusals(marks, Use.PACKAGE, encrypted=True) == []
    assert [r.restriction for r in refusals(marks, Use.PACKAGE, encrypted=True, outside_scope=True)] == [
        Restriction.NO_DISTRIBUTION]


def test_labels_show_classification_and_restrictions() -> None:
    marks = m(3, 2, 1, Restriction.NO_COPY)
    assert marks.label.startswith("C3-I2-A1 [複製禁止 / no copy, ")
    assert "暗号化必須" in marks.label
    assert marks.label_ja.startswith("機密性3情報・完全性2情報・可用性1情報（複製禁止")
    assert Marks.from_dict(marks.to_dict()) == marks


def test_invalid_levels_are_refused() -> None:
    with pytest.raises(ValueError):
        m(4)
