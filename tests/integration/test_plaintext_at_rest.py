"""No plaintext of any encrypted field at rest (ANON-18, SEC-133), nor in the logs (MN-3b: the access
record says who read which record and fields, never the values).

A real server (``tests/live.py``) with its own TMPDIR: the payroll My Number file is defined, the clerk
imports thousands of records through the API (more than a megabyte of CSV, so anything that spooled
the body to a temporary file would leave it there), creates, updates, reads, searches and reveals
some, and sends invalid values that are refused. Then the raw bytes of every file under the data
directory (``hogo.db``, ``hogo.db-wal``, ``hogo.db-shm``, ``hogo.toml``, the key files, the server's
log) and of the server's TMPDIR are searched for every value, in every form a search could find:
UTF-8, UTF-16 (LE and BE), Shift_JIS (CP932) and EUC-JP, JSON ``\\uXXXX`` escapes and percent-encoding;
numbers also as ASCII digit runs, in UTF-16 and with hyphens. Once while the server is running (the
WAL is then live) and once after it has stopped.

The scan is shown to work: it finds each form of a value planted in a scratch file, and it finds the
record IDs, which hogo keeps in clear by design, in the database files (on PostgreSQL when the
cluster's files are readable: ``HOGO_TEST_PG_DATA_DIR``). The segment field (``department``) is kept
in clear by design too (grant scopes) and is not searched for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hogo.domain.identifiers import my_number_check_digit
from live import LiveOrg, LiveServer, prepare_org, sign_in_api, start_server

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
CLERK = "clerk.ito"
N_ROWS = 6000  # ~1.2 MB of CSV
HEADER = ["record_id", "employee_no", "name", "name_kana", "my_number", "birth_date", "postal_code", "address",
          "phone", "department", "dependents"]

# Tokens that occur in no label, purpose or department name of the test organisation, each at
# least three characters (six bytes in every encoding, so random ciphertext cannot produce them).
SURNAMES = [("勅使河原", "テシガワラ"), ("西園寺", "サイオンジ"), ("小鳥遊", "タカナシ"), ("月見里", "ヤマナシ"),
            ("四月一日", "ワタヌキ"), ("東海林", "ショウジ"), ("御手洗", "ミタライ"), ("一寸木", "チョッキ"),
            ("五十嵐", "イガラシ"), ("九十九", "ツクモ")]
GIVEN = [("雅楽之助", "ウタノスケ"), ("左衛門", "サエモン"), ("千代之介", "チヨノスケ"), ("小百合", "サユリ"),
         ("由紀恵", "ユキエ"), ("奈津美", "ナツミ"), ("寿々子", "スズコ"), ("乃武夫", "ノブオ"), ("喜久雄", "キクオ"),
         ("佐和子", "サワコ")]
TOWNS = ["霞ヶ浦東雲台", "鳴門渦潮町", "桜島噴煙坂", "摩周湖霧里", "知床斜里岬"]
BUILDINGS = ["鶴亀荘", "松竹梅館", "不如帰ハイツ"]


def my_number(i: int) -> str:
    first11 = f"{73_000_000_000 + i * 7919:011d}"
    return first11 + str(my_number_check_digit(first11))


def bad_my_number(i: int) -> str:
    good = my_number(i)
    return good[:11] + str((int(good[11]) + 1) % 10)


def row(i: int, rid_prefix: str) -> dict[str, str]:
    sur, sur_kana = SURNAMES[i % len(SURNAMES)]
    given, given_kana = GIVEN[(i // len(SURNAMES)) % len(GIVEN)]
    return {
        "record_id": f"{rid_prefix}{i:05d}",
        "employee_no": f"HG{600000 + i:06d}",
        "name": f"{sur} {given}",
        "name_kana": f"{sur_kana} {given_kana}",
        "my_number": my_number(i),
        "birth_date": f"{1940 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "postal_code": f"{900 + i % 90:03d}-{i % 10000:04d}",
        "address": f"北海道{TOWNS[i % len(TOWNS)]}{1 + i % 9}丁目{1 + i % 30}番{1 + i % 20}号 "
                   f"{BUILDINGS[i % len(BUILDINGS)]}{100 + i % 900}号室",
        "phone": f"0{7 + i % 3}0-{(i * 37) % 10000:04d}-{(i * 91) % 10000:04d}",
        "department": "KYUYO",
        "dependents": str(i % 4),
    }


def csv_bytes(rows: Iterable[dict[str, str]]) -> bytes:
    lines = [",".join(HEADER)] + [",".join(r[h] for h in HEADER) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


# ------------------------------------------------------------------------------- the scanner


def text_forms(text: str) -> set[bytes]:
    """Every byte form of ``text`` a search of raw bytes could find."""
    forms = {text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be"),
             json.dumps(text).strip('"').encode("ascii"),
             urllib.parse.quote(text).encode("ascii"), urllib.parse.quote(text).lower().encode("ascii")}
    for enc in ("cp932", "euc_jp"):
        with contextlib.suppress(UnicodeEncodeError):
            forms.add(text.encode(enc))
    return forms


def trie_regex(words: Iterable[bytes]) -> re.Pattern[bytes]:
    """One regex matching any of ``words``, factored by common prefixes (a plain alternation of
    hundreds of literals is a hundred times slower over megabytes)."""
    trie: dict[int | None, Any] = {}
    for w in words:
        node = trie
        for b in w:
            node = node.setdefault(b, {})
        node[None] = {}

    def build(node: dict[int | None, Any]) -> bytes:
        alts = [re.escape(bytes([b])) + build(child) for b, child in sorted(
            (k, v) for k, v in node.items() if k is not None)]
        if not alts:
            return b""
        body = alts[0] if len(alts) == 1 else b"(?:" + b"|".join(alts) + b")"
        return b"(?:" + body + b")?" if None in node else body

    return re.compile(build(trie))


# Numeric values: runs of digits, hyphens, spaces and the employee-number prefix, in ASCII and UTF-16.
_RUN_CHARS = b"[0-9 HG-]"
_RUNS = [("ascii", re.compile(_RUN_CHARS + b"{7,}")),
         ("utf-16-le", re.compile(b"(?:" + _RUN_CHARS + b"\x00){7,}")),
         ("utf-16-be", re.compile(b"(?:\x00" + _RUN_CHARS + b"){7,}"))]
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RECORD_ID = re.compile(rb"r[0-9a-f]{22}")  # guard.new_record_id: time in hex, then 32 random bits
_FIELDS = [
    ("my_number", re.compile(r"[0-9]{12}")),
    ("my_number", re.compile(r"[0-9]{4}[- ][0-9]{4}[- ][0-9]{4}")),
    ("employee_no", re.compile(r"HG[0-9]{6}")),
    ("birth_date", re.compile(r"19[0-9]{2}-[0-9]{2}-[0-9]{2}")),
    ("postal_code", re.compile(r"[0-9]{3}-[0-9]{4}")),
    ("phone", re.compile(r"0[0-9]0-[0-9]{4}-[0-9]{4}")),
]


class Scanner:
    """Finds the plaintext values in raw bytes: every byte form (``text_forms``) of the name and
    address tokens; and the numeric values (My Numbers, employee numbers, birth dates, postal codes,
    phone numbers), looked for at every offset of every run of digits and hyphens in ASCII or UTF-16
    and matched against the sets of values."""

    def __init__(self, rows: list[dict[str, str]], extra_texts: Iterable[str] = ()) -> None:
        tokens = {t for pair in SURNAMES + GIVEN for t in pair} | set(TOWNS) | set(BUILDINGS) | set(extra_texts)
        self.literals: dict[bytes, str] = {}
        for t in tokens:
            for f in text_forms(t):
                self.literals[f] = t
        self.literal_re = trie_regex(self.literals)
        self.numbers: dict[str, set[str]] = {
            "my_number": {r["my_number"] for r in rows},
            "employee_no": {r["employee_no"] for r in rows},
            "birth_date": {r["birth_date"] for r in rows},
            "postal_code": {r["postal_code"] for r in rows},
            "phone": {r["phone"] for r in rows},
        }

    def find(self, data: bytes) -> Iterator[tuple[str, str, int]]:
        """(field, the value, offset) for every plaintext value in ``data``. UUIDs (grant, session and
        token IDs, which the log names) and generated record IDs are blanked first: a run of their hex
        digits can look like a postal code by chance, and they are not personal data."""
        data = _UUID.sub(lambda m: b"u" * len(m.group()), data)
        data = _RECORD_ID.sub(lambda m: b"u" * len(m.group()), data)
        for m in self.literal_re.finditer(data):
            yield "text", self.literals[m.group()], m.start()
        for enc, run_re in _RUNS:
            for run in run_re.finditer(data):
                text = run.group().decode(enc)
                for fld, rx in _FIELDS:
                    for i in range(len(text)):
                        m = rx.match(text, i)
                        if m is None:
                            continue
                        value = re.sub("[- ]", "", m.group()) if fld == "my_number" else m.group()
                        if value in self.numbers[fld]:
                            yield fld, value, run.start()

    def scan(self, roots: Iterable[Path], *, modified_since: float | None = None) -> tuple[list[str], list[Path]]:
        """Findings as 'path@offset: field value', and the files read (only those modified since
        ``modified_since``, when given)."""
        findings: list[str] = []
        files: list[Path] = []
        for root in roots:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                try:
                    if modified_since is not None and path.stat().st_mtime < modified_since:
                        continue
                    data = path.read_bytes()
                except (FileNotFoundError, PermissionError):
                    continue  # removed meanwhile (e.g. a WAL being checkpointed away)
                files.append(path)
                for fld, value, pos in self.find(data):
                    findings.append(f"{path}@{pos}: {fld} {value!r}")
        return findings, files


# -------------------------------------------------------------------------------- the test


def pg_data_dir(database_url: str) -> list[Path]:
    """The PostgreSQL cluster's WAL and this database's directory, when ``HOGO_TEST_PG_DATA_DIR``
    names a data directory this process may read (the test role is not a superuser, so the server
    cannot be asked)."""
    root = os.environ.get("HOGO_TEST_PG_DATA_DIR")
    if not root or not os.access(root, os.R_OK | os.X_OK):
        return []
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    parts = urllib.parse.urlsplit(url)
    plain = urllib.parse.urlunsplit(parts._replace(query=""))
    with psycopg.connect(plain) as conn:
        found = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
    assert found is not None
    return [Path(root) / "pg_wal", Path(root) / "base" / str(found[0])]


@pytest.fixture
def org_server(tmp_path: Path, database_url: str) -> Iterator[tuple[LiveOrg, LiveServer, Path]]:
    db_url = None if database_url.startswith("sqlite") else database_url  # SQLite: hogo.db in the data dir
    org = prepare_org(tmp_path / "data", database_url=db_url, grants=[
        {"user": CLERK, "actions": ["read", "create", "update"], "purposes": [P1]},
        {"user": CLERK, "actions": ["reveal"], "purposes": [P1], "fields": ["my_number"]},
    ])
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    server = start_server(org.data_dir, env={"TMPDIR": str(server_tmp), "TEMP": str(server_tmp),
                                             "TMP": str(server_tmp)})
    try:
        yield org, server, server_tmp
    finally:
        server.stop()


def test_scanner_finds_every_form_of_a_planted_value(tmp_path: Path):
    rows = [row(i, "x") for i in range(3)]
    scanner = Scanner(rows)
    r = rows[1]
    planted = [
        r["name"].encode("utf-8"), r["name"].encode("utf-16-le"), r["name"].encode("utf-16-be"),
        r["name"].encode("cp932"), r["name_kana"].encode("euc_jp"), json.dumps(r["address"]).encode(),
        urllib.parse.quote(r["name"]).encode(), r["my_number"].encode(), r["my_number"].encode("utf-16-le"),
        r["my_number"].encode("utf-16-be"), f"{r['my_number'][:4]}-{r['my_number'][4:8]}-{r['my_number'][8:]}".encode(),
        r["employee_no"].encode("utf-16-le"), r["birth_date"].encode(), r["postal_code"].encode("utf-16-be"),
        r["phone"].encode(),
    ]
    for i, form in enumerate(planted):
        d = tmp_path / f"p{i}"
        d.mkdir()
        (d / "blob").write_bytes(os.urandom(4096) + form + os.urandom(4096))
        findings, _ = scanner.scan([d])
        assert findings, f"the scanner missed planted form #{i} {form!r}"
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "noise").write_bytes(os.urandom(1 << 20))
    assert scanner.scan([clean])[0] == []


def test_no_plaintext_of_encrypted_fields_in_data_dir_wal_temp_files_or_logs_ANON_18_SEC_133_MN_3b(
        org_server: tuple[LiveOrg, LiveServer, Path], database_url: str):
    org, server, server_tmp = org_server
    sqlite = org.database_url is None
    rid_prefix = f"PLAINCTRL{uuid.uuid4().hex[:8].upper()}-"
    rows = [row(i, rid_prefix) for i in range(N_ROWS)]
    started = time.time() - 2
    token = sign_in_api(server.url, CLERK, org.password, org.secrets[CLERK])
    h = {"Authorization": f"Bearer {token}", "X-Hogo-Purpose": urllib.parse.quote(P1)}
    api = f"{server.url}/api/v1/files/{FILE}"
    with httpx.Client(headers=h, timeout=120) as c:
        # Bulk import (> 1 MB of CSV), and an import with refused rows (bad check digit, bad date).
        body = csv_bytes(rows[:-2])
        assert len(body) > 1_000_000
        r = c.post(f"{api}/records/import", content=body, headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        assert r.json()["imported"] == N_ROWS - 2
        bad = dict(rows[-2], my_number=bad_my_number(N_ROWS - 2))
        bad2 = dict(rows[-1], birth_date="1975-13-45")
        r = c.post(f"{api}/records/import", content=csv_bytes([bad, bad2]), headers={"Content-Type": "text/csv"})
        assert r.status_code in (200, 422), r.text
        assert bad["my_number"] not in r.text and bad["name"] not in r.text
        # One record created through the API, then updated.
        new = dict(rows[-2])
        rid = new.pop("record_id")
        r = c.post(f"{api}/records", json={"record_id": rid, "values": new})
        assert r.status_code == 201, r.text
        assert r.json()["values"]["my_number"] == "********" + new["my_number"][-4:]
        r = c.patch(f"{api}/records/{rid}", json={"values": {"address": rows[-1]["address"],
                                                             "phone": rows[-1]["phone"]}})
        assert r.status_code == 200, r.text
        # Refused values are not echoed.
        refused = {k: v for k, v in rows[-1].items() if k != "record_id"}
        refused["my_number"] = bad_my_number(N_ROWS - 1)
        r = c.post(f"{api}/records", json={"values": refused})
        assert r.status_code == 422 and bad_my_number(N_ROWS - 1) not in r.text
        # A search by My Number (blind index; the value travels in the body, never in a URL).
        r = c.post(f"{api}/records/search", json={"where": {"my_number": rows[7]["my_number"]}})
        assert r.status_code == 200, r.text
        assert [x["record_id"] for x in r.json()] == [rows[7]["record_id"]] and rows[7]["my_number"] not in r.text
        # Reads (masked), reveals and searches.
        for i in (0, 1, 2, 3, 500, 4999):
            r = c.get(f"{api}/records/{rows[i]['record_id']}")
            assert r.status_code == 200, r.text
            assert r.json()["values"]["name"] == rows[i]["name"]
            r = c.get(f"{api}/records/{rows[i]['record_id']}", params={"reveal": "my_number"})
            assert r.status_code == 200 and r.json()["values"]["my_number"] == rows[i]["my_number"]
            r = c.post(f"{api}/records/search", json={"where": {"employee_no": rows[i]["employee_no"]}})
            assert r.status_code == 200 and [x["record_id"] for x in r.json()] == [rows[i]["record_id"]]

    scanner = Scanner(rows, extra_texts=[bad2["birth_date"]])
    roots = [org.data_dir, server_tmp]
    pg_roots = [] if sqlite else pg_data_dir(database_url)

    # 1. While the server runs: the WAL is live.
    if sqlite:
        assert (org.data_dir / "hogo.db-wal").exists() and (org.data_dir / "hogo.db-shm").exists()
    findings, files = scanner.scan(roots)
    pg_findings, pg_files = scanner.scan(pg_roots, modified_since=started)  # the files this test wrote to
    findings += pg_findings
    files += pg_files
    assert not findings, "plaintext at rest while the server runs:\n" + "\n".join(findings[:40])
    names = {p.name for p in files}
    assert any(n.startswith("server-") and n.endswith(".log") for n in names)
    assert any(p.parent.name == "keys" for p in files)
    if sqlite:
        assert {"hogo.db", "hogo.db-wal", "hogo.db-shm"} <= names

    # The scan does read the records: the record IDs (kept in clear by design) are found.
    db_files = [p for p in files if p.name.startswith("hogo.db")] if sqlite else pg_files
    if sqlite or pg_roots:
        assert any(rid_prefix.encode() in p.read_bytes() for p in db_files if p.exists()), \
            "the positive control failed: the record IDs were not found in the database files"

    # 2. The log: no My Number, no name, in any form.
    log = server.log()
    for r in rows:
        assert r["my_number"] not in log
    assert not [f for f in scanner.find(server.log_path.read_bytes())]

    # 3. After the server has stopped (SQLite checkpoints the WAL into hogo.db).
    server.stop()
    findings = scanner.scan(roots)[0] + scanner.scan(pg_roots, modified_since=started)[0]
    assert not findings, "plaintext at rest after the server stopped:\n" + "\n".join(findings[:40])
