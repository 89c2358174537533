"""The audit-log pages (issue 4) over TestClient, on SQLite and PostgreSQL: search (SEC-107(2), MN-3b,
SEC-132), own history only without ``audit:event:read``, every read of the log logged (ANON-12), an
entry's inclusion proof that verifies offline (SEC-107(3), MLIT-9.5.4), the activity chart, and
"verify now". Search values (user names, record IDs) travel in POST bodies only."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from hogo.crypto import checkpoint as notes
from hogo.domain import merkle
from hogo.domain.events import Event
from hogo.errors import Forbidden
from hogo.services import audit_access, grants, guard
from hogo.store.models import AuditEvent, User
from support import CTX, Instance, Org, attacker, hidden_csrf, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": "123456789018", "department": "KYUYO"}
SUZUKI = {"employee_no": "E0002", "name": "鈴木 一郎", "my_number": "111111111118", "department": "KYUYO"}


# ---------------------------------------------------------------------------------- helpers


@pytest.fixture
def org(inst: Instance) -> Org:
    """clerk.ito may read and create for P1; two records exist, E0001 has been read once, and
    clerk.tanaka (no grant) was refused once."""
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user="clerk.ito", actions=["read", "create"],
                        purposes=[P1], ctx=CTX)
    ito = o.p("clerk.ito")
    guard.create_record(inst.hogo, ito, FILE, ITO, purpose=P1, ctx=CTX, record_id="E0001")
    guard.create_record(inst.hogo, ito, FILE, SUZUKI, purpose=P1, ctx=CTX, record_id="E0002")
    guard.read_record(inst.hogo, ito, FILE, "E0001", purpose=P1, ctx=CTX)
    with pytest.raises(Forbidden):
        guard.read_record(inst.hogo, o.p("clerk.tanaka"), FILE, "E0002", purpose=P1, ctx=CTX)
    return o


def search(c: TestClient, csrf: str, **values: str) -> str:
    r = c.post("/audit", data={"csrf_token": csrf, **values})
    assert r.status_code == 200, r.text
    return r.text


def shown(page: str) -> list[tuple[int, str, str]]:
    """(seq, event, actor) of each row of the results table."""
    return [(int(s), e, html.unescape(a)) for s, e, a in
            re.findall(r'data-testid="audit-row" data-seq="(\d+)" data-event="([^"]+)" data-actor="([^"]*)"', page)]


def entries(org: Org, event: Event) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event.value).order_by(AuditEvent.seq)))


def user_id(org: Org, name: str) -> int:
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        uid = db.scalar(select(User.id).where(User.username == name))
    assert uid is not None
    return uid


def no_inline_script_or_style(page: str) -> None:
    assert re.search(r"<script(?![^>]*\ssrc=)", page) is None
    assert " style=" not in page and "<style" not in page


def by_testid(page: str, name: str) -> str:
    m = re.search(rf'data-testid="{name}"[^>]*>(.*?)</', page, re.S)
    assert m, name
    return html.unescape(m.group(1)).strip()


# ------------------------------------------------------------------------------------ search


def test_the_auditor_sees_every_entry_and_a_clerk_only_their_own_SEC_107_2_MN_3b(web: TestClient, org: Org):
    org.web_sign_in(web, "auditor.watanabe")
    r = web.get("/audit")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    no_inline_script_or_style(r.text)
    assert 'href="/static/audit.css"' in r.text and 'data-testid="nav-audit"' in r.text
    actors = {a for _, _, a in shown(r.text)}
    assert {"clerk.ito", "clerk.tanaka", "pm.takahashi", "admin"} <= actors
    assert 'data-testid="own-only"' not in r.text
    assert 'name="user"' in r.text and 'data-testid="verify-now"' in r.text and 'href="/audit/activity"' in r.text
    assert "記録の参照" in r.text and "data:record:read" in r.text  # the event in words, and its name
    assert "拒否" in r.text  # clerk.tanaka's refusal, with its badge

    org.web_sign_in(web, "clerk.ito")
    r = web.get("/audit")
    assert r.status_code == 200
    assert 'data-testid="own-only"' in r.text and "あなた自身の操作履歴" in r.text
    assert 'name="user"' not in r.text and 'data-testid="verify-now"' not in r.text
    assert 'data-testid="nav-audit"' in r.text  # the link is everyone's: their own history
    rows = shown(r.text)
    assert rows and any(e == "data:record:create" for _, e, _ in rows)
    ito = user_id(org, "clerk.ito")
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        for seq, _, _ in rows:
            row = db.get(AuditEvent, seq)
            assert row is not None and ito in (row.actor_id, row.subject_user_id), (seq, row.event)
    # Even by asking for another user's history: the clerk still gets only their own.
    page = search(web, hidden_csrf(r.text), user="clerk.tanaka", file=FILE)
    assert {a for _, _, a in shown(page)} == {"clerk.ito"}
    # Nor the activity charts or the verifier.
    assert web.get("/audit/activity").status_code == 403
    assert web.post("/audit/verify", data={"csrf_token": hidden_csrf(r.text)}).status_code == 403


def test_search_by_record_is_a_post_and_is_itself_logged_ANON_12(web: TestClient, org: Org):
    csrf = org.web_sign_in(web, "auditor.watanabe")
    form = web.get("/audit").text.split('data-testid="audit-search"')[0].rsplit("<form", 1)[1]
    assert 'method="post"' in form and 'action="/audit"' in form
    before = len(entries(org, Event.LOG_READ))
    page = search(web, csrf, file=FILE, record="E0001")
    rows = shown(page)
    assert [e for _, e, _ in rows] == ["data:record:read", "data:record:create"]  # newest first, E0002's not
    assert all(a == "clerk.ito" for _, _, a in rows)
    assert 'value="E0001"' in page  # echoed into the form, never into a URL
    reads = entries(org, Event.LOG_READ)
    assert len(reads) == before + 1
    last = reads[-1]
    assert last.actor_name == "auditor.watanabe" and last.target == "log:search"
    assert last.details and last.details["filters"] == {"file": FILE, "record": "E0001"}

    # By user, event and outcome: clerk.tanaka's refusal.
    page = search(web, csrf, user="clerk.tanaka", event="data:record:", outcome="denied")
    assert [(e, a) for _, e, a in shown(page)] == [("data:record:read", "clerk.tanaka")]
    # A period in the organisation's zone (the fake clock is at 2026-04-01 18:00 JST).
    assert shown(search(web, csrf, event="data:record:create", since="2026-04-01", until="2026-04-01"))
    assert not shown(search(web, csrf, event="data:record:create", since="2026-04-02"))
    assert 'data-testid="audit-none"' in search(web, csrf, event="data:record:create", until="2026-03-31")


def test_search_errors_are_shown_next_to_the_field(web: TestClient, org: Org):
    csrf = org.web_sign_in(web, "auditor.watanabe")
    r = web.post("/audit", data={"csrf_token": csrf, "record": "E0001"})
    assert r.status_code == 422 and "ファイルも指定してください" in by_testid(r.text, "error-record")
    r = web.post("/audit", data={"csrf_token": csrf, "since": "2026-13-01"})
    assert r.status_code == 422 and by_testid(r.text, "error-since")
    r = web.post("/audit", data={"csrf_token": csrf, "since": "2026-04-02", "until": "2026-04-01"})
    assert r.status_code == 422 and by_testid(r.text, "error-until")
    r = web.post("/audit", data={"csrf_token": csrf, "event": "no:such:thing"})
    assert r.status_code == 422 and by_testid(r.text, "error-event")
    r = web.post("/audit", data={"csrf_token": csrf, "user": "nobody.here"})
    assert r.status_code == 404 and "その利用者はいません" in by_testid(r.text, "error-user")
    # CSRF on every POST.
    assert web.post("/audit", data={"file": FILE}).status_code == 403
    assert web.post("/audit", data={"csrf_token": "x" * 40, "file": FILE}).status_code == 403


def test_older_entries_page_by_before(web: TestClient, org: Org):
    csrf = org.web_sign_in(web, "auditor.watanabe")
    for _ in range(30):  # each look at the log is an entry of its own: enough for two pages
        web.get("/audit")
    page = search(web, csrf)
    first = shown(page)
    assert len(first) == 50 and 'data-testid="older"' in page and 'data-testid="newest-form"' not in page
    before = int(re.search(r'name="before" value="(\d+)"', page).group(1))  # type: ignore[union-attr]
    assert before == first[-1][0]
    page2 = search(web, csrf, before=str(before))
    second = shown(page2)
    assert second and all(s < before for s, _, _ in second)
    assert second[0][0] == before - 1  # no gap, no overlap
    assert 'data-testid="newest-form"' in page2


# -------------------------------------------------------------------------------- one entry


def _proof_of(page: str) -> tuple[int, int, bytes, list[bytes], bytes, str]:
    index = int(by_testid(page, "proof-index"))
    size = int(by_testid(page, "proof-size"))
    leaf = bytes.fromhex(by_testid(page, "proof-leaf"))
    path_block = page.split('data-testid="proof-path"')[1].split("</ol>")[0]
    path = [bytes.fromhex(h) for h in re.findall(r'<code class="hash">([0-9a-f]{64})</code>', path_block)]
    root = bytes.fromhex(by_testid(page, "proof-root"))
    checkpoint = by_testid(page, "proof-checkpoint") + "\n"
    return index, size, leaf, path, root, checkpoint


def test_an_entry_shows_a_proof_that_verifies_offline_SEC_107_3_MLIT_9_5_4(web: TestClient, org: Org):
    created = entries(org, Event.RECORD_CREATED)[0]
    org.web_sign_in(web, "auditor.watanabe")
    r = web.get(f"/audit/entries/{created.seq}")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    no_inline_script_or_style(r.text)
    page = r.text
    assert "記録の登録" in by_testid(page, "entry-event") and "E0001" in page
    assert '"event": "data:record:create"' in html.unescape(page)  # the entry as logged, pretty JSON
    assert by_testid(page, "leaf-hash") == created.leaf_hash.hex()
    assert by_testid(page, "entry-raw").encode("utf-8") == created.entry

    index, size, leaf, path, root, checkpoint = _proof_of(page)
    assert index == created.seq and leaf == created.leaf_hash and size > index
    assert merkle.verify_inclusion(index, size, leaf, path, root)
    # ... under a checkpoint signed by the key the page lets you download.
    key = web.get("/audit/public-key")
    assert key.status_code == 200 and key.headers["content-type"].startswith("text/plain")
    assert key.text.strip() == audit_access.public_key(org.inst.hogo)
    name, public = notes.parse_public_key_text(key.text.strip())
    cp = notes.verify_note(checkpoint, name, public, origin=name)
    assert (cp.size, cp.root) == (size, root)
    assert merkle.leaf_hash(created.entry or b"") == leaf
    for check in ("leaf", "signature", "path"):
        assert 'class="check-ok"' in page.split(f'data-testid="check-{check}"')[0].rsplit("<li", 1)[1]
    assert f"hogo audit prove {created.seq} --key" in page and "hogo audit verify --bundle" in page
    assert 'href="/audit/public-key"' in page
    # Showing the entry and its proof are reads of the log, both logged (ANON-12).
    targets = [e.target for e in entries(org, Event.LOG_READ)][-2:]
    assert targets == [f"log:entry:{created.seq}", f"log:proof:{created.seq}"]


def test_a_clerk_opens_their_own_entries_only(web: TestClient, org: Org):
    own = entries(org, Event.RECORD_CREATED)[0]
    refused = next(e for e in entries(org, Event.RECORD_READ) if e.actor_name == "clerk.tanaka")
    org.web_sign_in(web, "clerk.ito")
    page = web.get(f"/audit/entries/{own.seq}").text
    index, size, leaf, path, root, _ = _proof_of(page)
    assert merkle.verify_inclusion(index, size, leaf, path, root)
    r = web.get(f"/audit/entries/{refused.seq}")
    assert r.status_code == 404 and "閲覧する権限がありません" in r.text
    assert web.get("/audit/entries/999999").status_code == 404
    assert web.get("/audit/entries/abc").status_code == 404


# --------------------------------------------------------------------------------- activity


def bars(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<g class="bar" data-testid="bar" data-total="(\d+)"', page)]


def test_the_activity_chart_counts_data_access_per_day_and_hour(web: TestClient, org: Org):
    org.web_sign_in(web, "auditor.watanabe")
    r = web.get("/audit/activity?days=7")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    no_inline_script_or_style(r.text)
    assert '<svg class="chart"' in r.text and 'href="/static/audit.css"' in r.text
    week = bars(r.text)
    assert len(week) == 7 and week[-1] == 4 and sum(week[:-1]) == 0  # 2 creates, 1 read, 1 refusal: today
    last = r.text.split('data-testid="bar"')[-1].split("</g>")[0]
    assert 'class="seg success"' in last and 'data-count="3"' in last
    assert 'class="seg denied"' in last and 'data-count="1"' in last
    assert len(bars(web.get("/audit/activity?days=30").text)) == 30
    assert len(bars(web.get("/audit/activity?days=2").text)) == 48
    day = web.get("/audit/activity?days=1").text
    assert len(bars(day)) == 24 and bars(day)[-1] == 4
    # Top users by records accessed, and the latest denials.
    top = day.split('data-testid="top-users"')[1].split("</table>")[0]
    assert re.search(r'data-user="clerk.ito">\s*<th scope="row">clerk.ito</th>\s*<td class="num">3</td>', top)
    denials = day.split('data-testid="denials"')[1].split("</ul>")[0]
    assert "clerk.tanaka" in denials and "clerk.ito" not in denials

    # A day later, new accesses land in a new bar; yesterday's stay where they were.
    org.inst.clock.advance(days=1)
    guard.read_record(org.inst.hogo, org.p("clerk.ito"), FILE, "E0002", purpose=P1, ctx=CTX)
    org.web_sign_in(web, "auditor.watanabe")  # the session has ended meanwhile
    week = bars(web.get("/audit/activity?days=7").text)
    assert week[-2:] == [4, 1]
    # Looking is logged (ANON-12); a bad period is refused with the reason.
    assert entries(org, Event.LOG_READ)[-1].target == "log:activity"
    r = web.get("/audit/activity?days=9999")
    assert r.status_code == 422 and by_testid(r.text, "activity-error")
    assert len(bars(r.text)) == 30  # the default period instead


# ----------------------------------------------------------------------------- verification


def test_verify_now_says_intact_and_names_the_first_problem_SEC_107_3(web: TestClient, org: Org):
    csrf = org.web_sign_in(web, "auditor.watanabe")
    assert web.post("/audit/verify", data={}).status_code == 403  # CSRF
    r = web.post("/audit/verify", data={"csrf_token": csrf})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    no_inline_script_or_style(r.text)
    assert "ログは完全です" in by_testid(r.text, "verify-ok") and 'data-testid="verify-broken"' not in r.text
    ran = entries(org, Event.LOG_VERIFIED)
    assert ran and ran[-1].actor_name == "auditor.watanabe" and ran[-1].outcome == "success"
    assert web.get("/audit/verify", follow_redirects=False).headers["location"] == "/audit"

    read = next(e for e in entries(org, Event.RECORD_READ) if e.actor_name == "clerk.tanaka")
    with attacker(org.inst) as conn:  # hide the refusal in the search columns
        conn.execute(text("UPDATE audit_events SET outcome = 'success' WHERE seq = :s"), {"s": read.seq})
    r = web.post("/audit/verify", data={"csrf_token": csrf})
    assert r.status_code == 200 and 'data-testid="verify-broken"' in r.text
    assert by_testid(r.text, "problem-kind") == "modified"
    assert f'href="/audit/entries/{read.seq}"' in r.text.split('data-testid="problem-seq"')[1].split("</dd>")[0]
    assert entries(org, Event.LOG_VERIFIED)[-1].outcome == "failure"


# ---------------------------------------------------------------------------------- English


def test_the_pages_in_english(web: TestClient, org: Org):
    csrf = org.web_sign_in(web, "auditor.watanabe")
    web.get("/lang/en")
    page = web.get("/audit").text
    assert '<html lang="en">' in page and ">Audit log<" in page and "Record read" in page and "Denied" in page
    assert "記録の参照" not in page
    page = search(web, csrf, file=FILE, record="E0001")
    assert "2 entries, newest first" in page
    seq = shown(page)[0][0]
    page = web.get(f"/audit/entries/{seq}").text
    assert "Inclusion proof (RFC 9162)" in page and "Verifying it yourself" in page
    assert "Accesses per day" in web.get("/audit/activity?days=7").text
    assert "The log is intact" in web.post("/audit/verify", data={"csrf_token": csrf}).text
    org.web_sign_in(web, "clerk.ito")
    web.get("/lang/en")
    assert "You see only your own history" in web.get("/audit").text
