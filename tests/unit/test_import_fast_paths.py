"""The bulk import's fast paths give exactly what the general, one-record paths give (issue 3).

Validators chosen once per field (``value_normaliser``, ``cells_normaliser``) against
``normalise_value``/``normalise_record``; the batch sealer (``FileKeys.seal_records``) against
``open_record``, with every value still encrypted on its own and bound to file, record, field and
key version (ANON-18, SEC-133); the check digits against the rule as written (MN: 個人番号).
"""

from __future__ import annotations

import os
import random
import re
import struct
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hogo.crypto.envelope import FileKeys
from hogo.crypto.keys import SealError
from hogo.domain.files import (
    FieldSpec,
    FieldType,
    Sensitivity,
    cells_normaliser,
    normalise_record,
    normalise_value,
    parse_spec,
    value_normaliser,
)
from hogo.domain.identifiers import my_number_check_digit
from hogo.services.guard import RECORD_ID_RE, _index_rows, _RecordIds, _seal_batch
from support import payroll_spec

SPEC = parse_spec(payroll_spec())

TRICKY = st.one_of(
    st.sampled_from([
        "", " ", "\u3000", "123456789018", "１２３４５６７８９０１８", "1234-5678-9018", "123456789012", "12345678901",
        "5835678256483", "1990-04-01", "1990/02/30", "１９９０－０４－０１", "100-0001", "〒1000001", "〒 100-0001",
        "03-1234-5678", "+81 3 1234 5678", "ｶﾀｶﾅ", "a\x07b", " a\tb ", "abc\n", "\x7f", "7", "1,234", "-3.5",
        "x" * 1001, " " + "y" * 1000 + " ", "a@b.jp", "a@@b", "ＡＢＣ", "①", "㍻", "\u00a0x\u00a0", "\udc80",
    ]),
    st.text(max_size=12),
    st.text(alphabet=st.characters(max_codepoint=0x7f), max_size=12),
)


def _field(ftype: FieldType, max_length: int = 1000) -> FieldSpec:
    sens = Sensitivity.IDENTIFICATION_CODE if ftype is FieldType.MY_NUMBER else Sensitivity.OTHER
    return FieldSpec(name="f", label="f", type=ftype, sensitivity=sens, max_length=max_length)


def _outcome(fn, raw):
    try:
        return "ok", fn(raw)
    except ValueError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("ftype", list(FieldType))
@settings(max_examples=150, deadline=None)
@given(raw=TRICKY)
def test_a_validator_chosen_once_per_field_gives_the_same_value_or_reason(ftype, raw):
    for max_length in (1000, 5):
        f = _field(ftype, max_length)
        assert _outcome(value_normaliser(f), raw) == _outcome(lambda r, f=f: normalise_value(f, r), raw)


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({name: TRICKY for name in SPEC.field_names}))
def test_a_row_as_cells_is_judged_as_the_single_record_path_judges_it(values):
    columns = list(SPEC.field_names)
    random.Random(len(str(values))).shuffle(columns)
    fast = cells_normaliser(SPEC, [None, *columns])(["ignored", *(values[c] for c in columns)])
    slow = normalise_record(SPEC, values)
    assert fast[0] == slow[0]
    assert sorted(fast[1]) == sorted(slow[1])


def test_a_row_with_a_control_character_in_one_value_is_rejected_for_that_value_only():
    columns = list(SPEC.field_names)
    cells = ["E1", "山田 太郎", "ヤマダ\x00", "123456789018", "", "", "東京都\n", "", "KYUYO", ""]
    clean, problems = cells_normaliser(SPEC, columns)(cells)
    assert problems == [("name_kana", "must not contain control characters")]
    assert clean["address"] == "東京都"  # trailing newline trimmed, as normalise_value does


def test_nfkc_never_makes_a_control_character_so_one_check_of_the_raw_row_suffices():
    control = re.compile(r"[\x00-\x1f\x7f]")
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF or control.search(chr(cp)):
            continue
        assert not control.search(unicodedata.normalize("NFKC", chr(cp))), hex(cp)


def _check_digit_as_written(first11: str) -> int:
    total = sum(int(ch) * (n + 1 if n <= 6 else n - 5) for n, ch in enumerate(reversed(first11), start=1))
    return 0 if total % 11 <= 1 else 11 - total % 11


def test_my_number_check_digit_follows_the_rule_MN():
    rng = random.Random(3)
    for _ in range(20_000):
        first11 = f"{rng.randrange(10**11):011d}"
        assert my_number_check_digit(first11) == _check_digit_as_written(first11)
    assert my_number_check_digit("12345678901") == 8
    assert my_number_check_digit("１２３４５６７８９０１") == 8  # full-width digits, as int() reads them


# ------------------------------------------------------------------------------- sealing

VALUES = {"employee_no": "E000001", "name": "山田 太郎", "my_number": "123456789018", "address": "東京都千代田区"}


def _keys(file_id: int = 7, versions: tuple[int, ...] = (1,)) -> FileKeys:
    return FileKeys(file_id, {v: os.urandom(32) for v in versions}, os.urandom(32))


def _entries(blob: bytes) -> list[tuple[str, bytes, int, int]]:
    """(field, nonce+ciphertext, start, end) of each entry of a blob."""
    pos, out = 5, []
    while pos < len(blob):
        (n,) = struct.unpack_from(">H", blob, pos)
        field = blob[pos + 2:pos + 2 + n].decode()
        (m,) = struct.unpack_from(">I", blob, pos + 2 + n)
        start = pos + 6 + n
        out.append((field, blob[start:start + m], start, start + m))
        pos = start + m
    return out


def test_a_batch_is_sealed_value_by_value_and_opens_record_by_record_ANON_18_SEC_133():
    keys = _keys(versions=(1, 2))
    records = [(f"r{i}", {**VALUES, "employee_no": f"E{i:06d}"}) for i in range(50)]
    version, blobs = keys.seal_records(records)
    assert version == 2 and len(blobs) == 50
    nonces = set()
    for (rid, values), blob in zip(records, blobs, strict=True):
        assert keys.open_record(rid, blob) == values
        entries = _entries(blob)
        assert [e[0] for e in entries] == list(values)
        for field, ct, _, _ in entries:
            nonces.add(ct[:12])
            assert values[field].encode() not in ct
            assert len(ct) == 12 + len(values[field].encode()) + 16  # nonce, ciphertext, GCM tag
    assert len(nonces) == 50 * len(VALUES)  # every value its own nonce
    # One record sealed alone is the same format.
    _, one = keys.seal_record("r0", records[0][1])
    assert keys.open_record("r0", one) == records[0][1] and len(one) == len(blobs[0])


def test_batch_ciphertexts_moved_between_fields_records_or_files_fail_to_open_SEC_45_ANON_18():
    deks, index_key = {1: os.urandom(32)}, os.urandom(32)
    keys = FileKeys(7, deks, index_key)
    _, (a, b) = keys.seal_records([("ra", VALUES), ("rb", VALUES)])
    # Another record's blob under this record's ID.
    with pytest.raises(SealError):
        keys.open_record("ra", b)
    # Two fields' ciphertexts swapped within a record (same lengths: employee_no and my_number differ,
    # so swap the two whose plaintexts have the same length).
    _, (c,) = keys.seal_records([("rc", {"x": "same-len-1", "y": "same-len-2"})])
    (_, cx, sx, ex), (_, cy, sy, ey) = _entries(c)
    swapped = c[:sx] + cy + c[ex:sy] + cx + c[ey:]
    with pytest.raises(SealError, match="tampered or moved"):
        keys.open_record("rc", swapped)
    # One field's ciphertext taken from another record.
    (_, _, sa, ea) = _entries(a)[2]
    (_, cb, _, _) = _entries(b)[2]
    with pytest.raises(SealError):
        keys.open_record("ra", a[:sa] + cb + a[ea:])
    # A flipped bit.
    with pytest.raises(SealError):
        keys.open_record("ra", a[:-1] + bytes([a[-1] ^ 1]))
    # The same keys under another file's ID.
    other = FileKeys(8, deks, index_key)
    assert other.open_record("ra", other.seal_record("ra", VALUES)[1]) == VALUES
    with pytest.raises(SealError):
        other.open_record("ra", a)
    # The key version in the header is bound too.
    two = _keys(versions=(1, 2))
    _, (d,) = two.seal_records([("rd", VALUES)])
    with pytest.raises(SealError):
        two.open_record("rd", d[:1] + (1).to_bytes(4, "big") + d[5:])


# ------------------------------------------------------------------------------- record IDs


def test_import_record_ids_are_unique_time_ordered_and_valid():
    ids = _RecordIds()
    made = [ids() for _ in range(5000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    assert all(RECORD_ID_RE.fullmatch(r) and len(r) == 23 for r in made)
    # Blocks follow one another without overlap, each starting at the clock or after the last.
    more = [ids() for _ in range(3000)]
    assert more[0] > made[-1] and len(set(made + more)) == 8000


def test_a_sealed_batch_has_the_single_record_index_rows_in_index_order_and_opens():
    keys = _keys()
    good = [(i + 1, f"r{i}", {**VALUES, "employee_no": f"E{i:03d}"}, "KYUYO") for i in range(20)]
    good[3][2].pop("address")
    sealed = _seal_batch(keys, SPEC, good)
    pk_of = {f"r{i}": 100 + i for i in range(20)}
    fast = [(name, digest, pk_of[rid]) for name, digest, rid in sealed.index]
    slow = [(r["field"], r["digest"], r["record_pk"]) for _, rid, clean, _ in good
            for r in _index_rows(keys, SPEC, 1, pk_of[rid], clean)]
    assert sorted(fast) == sorted(slow) and sealed.index == sorted(sealed.index)
    assert [(n, rid, seg) for n, rid, seg, _ in sealed.rows] == [(n, rid, seg) for n, rid, _, seg in good]
    for (_, rid, clean, _), (_, _, _, blob) in zip(good, sealed.rows, strict=True):
        assert keys.open_record(rid, blob) == clean
    assert sealed.fields[3] == tuple(k for k in good[3][2]) and "address" not in sealed.fields[3]


def test_the_blind_index_is_hmac_sha256_of_field_and_value_under_the_index_key():
    import hashlib
    import hmac

    index_key = os.urandom(32)
    keys = FileKeys(7, {1: os.urandom(32)}, index_key)
    expected = hmac.new(index_key, b"my_number\x00123456789018", hashlib.sha256).digest()
    assert keys.blind_index("my_number", "123456789018") == expected
