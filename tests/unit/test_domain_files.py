"""File specs (MN-3c ledger items, SEC-5 classification) and value normalisation."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hogo.domain.files import FileKind, Restriction, SpecError, normalise_record, parse_spec, row_normaliser
from support import payroll_spec

SPEC = parse_spec(payroll_spec())


def test_the_shipped_example_spec_parses_with_its_ledger_items_MN_3c():
    assert SPEC.kind is FileKind.SPECIFIC
    assert SPEC.administrative_task == "源泉徴収票作成事務" and SPEC.legal_basis
    assert SPEC.classification.label == "C3-I2-A1"
    # Confidentiality 3 always means encryption required (SEC-5).
    assert Restriction.ENCRYPTION_REQUIRED in SPEC.restrictions
    assert SPEC.field("my_number").indexed and SPEC.field("my_number").is_identification_code


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"kind": "personal_information"}, "kind"),  # has a my_number field
        ({"administrative_task": None}, "administrative_task"),
        ({"purposes": []}, "purposes"),
        ({"classification": {"confidentiality": 2, "integrity": 1, "availability": 1}},
         "classification.confidentiality"),
        ({"restrictions": ["no_copy", "no_photos"]}, "restrictions[1]"),
        ({"retention_days": 10, "retention_years": 1}, "retention_days"),
        ({"subject_field": "nope"}, "subject_field"),
        ({"segment_field": "name"}, "segment_field"),  # a name may not be kept in clear
        ({"colour": "blue"}, "colour"),
    ],
)
def test_spec_problems_are_named_by_path(change, path):
    raw = {**payroll_spec(), **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(SpecError) as e:
        parse_spec(raw)
    assert path in [p for p, _ in e.value.problems], e.value.problems


def test_field_problems_are_named_by_index():
    raw = copy.deepcopy(payroll_spec())
    raw["fields"][2]["type"] = "blob"
    raw["fields"][3]["sensitivity"] = "other"
    with pytest.raises(SpecError) as e:
        parse_spec(raw)
    paths = [p for p, _ in e.value.problems]
    assert "fields[2].type" in paths and "fields[3].sensitivity" in paths


VALUES = st.one_of(
    st.just(""), st.just("123456789018"), st.just("１２３４５６７８９０１８"), st.just("123456789012"),
    st.just("1990-04-01"), st.just("1990/02/30"), st.just("100-0001"), st.just("〒1000001"), st.just("03-1234-5678"),
    st.just("ｶﾀｶﾅ"), st.just("a\x07b"), st.just("7"), st.just("1,234"), st.just("x" * 1001), st.text(max_size=20),
)


@settings(max_examples=300)
@given(st.fixed_dictionaries({name: VALUES for name in SPEC.field_names}))
def test_the_import_normaliser_agrees_with_the_single_record_one(values):
    fast = row_normaliser(SPEC, SPEC.field_names)(values)
    slow = normalise_record(SPEC, values)
    assert fast[0] == slow[0]
    assert sorted(fast[1]) == sorted(slow[1])
