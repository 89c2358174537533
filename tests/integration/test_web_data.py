"""The web UI for personal-data files, records and grants (issue 3), over TestClient on SQLite and
PostgreSQL. The pages call the same services as the API; these tests check what a person sees and
what the guard records: classification and restrictions shown (SEC-5), My Numbers masked and revealed
only with a grant (MN-6a), every access recorded (MN-3b), purposes and search values in POST bodies
only (SEC-45), CSRF on every POST, grant changes by managers only (SEC-130) and never for oneself
(SEC-19), and the access review (SEC-131)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hogo.domain.events import Event
from hogo.services import accounts, grants, guard
from hogo.store.models import AuditEvent
from support import CTX, USER_PASSWORD, Instance, Org, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
P2 = "年末調整事務"
MN = "123456789018"
MASKED = "********9018"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": MN, "department": "KYUYO",
       "birth_date": "1990-04-01"}


# ---------------------------------------------------------------------------------- helpers


@pytest.fixture
def org(inst: Instance) -> Org:
    return make_org(inst)


def grant(org: Org, who: str = "clerk.ito", *, actions=("read",), purposes=(P1,), **kw):
    return grants.create_grant(org.inst.hogo, org.p("pm.takahashi"), FILE, user=who, actions=list(actions),
                               purposes=list(purposes), ctx=CTX, **kw)


def with_record(org: Org) -> str:
    """clerk.ito may read and create for P1; one record (伊藤) exists. Returns its ID."""
    grant(org, actions=("read", "create"))
    rec = guard.create_record(org.inst.hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX, record_id="E0001")
    return rec.record_id


def events(org: Org, event: Event, outcome: str | None = None) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work() as db:
        q = select(AuditEvent).where(AuditEvent.event == event.value)
        if outcome:
            q = q.where(AuditEvent.outcome == outcome)
        return list(db.scalars(q.order_by(AuditEvent.seq)))


def no_inline_script_or_style(html: str) -> None:
    assert re.search(r"<script(?![^>]*\ssrc=)", html) is None
    assert " style=" not in html and "<style" not in html


# ------------------------------------------------------------------------------------- files


def test_files_list_shows_kind_classification_and_restrictions_SEC_5(web: TestClient, org: Org):
    with_record(org)
    org.web_sign_in(web, "clerk.ito")
    r = web.get("/files")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    no_inline_script_or_style(r.text)
    card = r.text.split(f'data-testid="file-{FILE}"')[1]
    assert "給与所得者の扶養控除等申告書ファイル" in card and "特定個人情報ファイル" in card
    assert "C3-I2-A1" in card and "要機密" in card and "要保全" in card and "要保護" in card
    assert "要安定" not in card  # A1
    assert "複製禁止" in card and "持出禁止" in card and "暗号化必須" in card  # C3 ⇒ encryption required
    assert f'data-testid="records-{FILE}">1<' in card
    assert 'href="/files"' in r.text  # in the main menu

    # Nobody else's files: a clerk without grants and the administrator (no data access, SEC-150) see none.
    org.web_sign_in(web, "clerk.tanaka")
    assert 'data-testid="no-files"' in web.get("/files").text
    web.get("/lang/en")
    r = web.get("/files")
    assert "There is no file you may use" in r.text


def test_file_page_shows_the_ledger_entry_and_fields_MN_3c(web: TestClient, org: Org):
    org.web_sign_in(web, "pm.takahashi")
    r = web.get(f"/files/{FILE}")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    no_inline_script_or_style(r.text)
    ledger = r.text.split('data-testid="ledger"')[1].split("</dl>")[0]
    for text in (P1, P2, "所得税法第226条", "KYUYO", "pm.takahashi", "従業員本人から書面で取得",
                 "従業員及びその扶養親族", "2556日（約7年）"):
        assert text in ledger, text
    fields = r.text.split('data-testid="fields"')[1].split("</table>")[0]
    assert "個人番号" in fields and "個人識別符号" in fields and "扶養親族の数" in fields
    assert 'data-testid="classification"' in r.text and "C3-I2-A1" in r.text
    assert 'data-testid="grants-link"' in r.text  # the protection manager may manage grants
    # The lookup: purpose chosen from the file's purposes, a POST form, searchable fields only.
    form = r.text.split('data-testid="search-form"')[0].rsplit("<form", 1)[1]
    assert 'method="post"' in form
    assert f'<option value="{P1}"' in r.text and 'name="q_my_number"' in r.text and 'name="q_employee_no"' in r.text
    assert 'name="q_name"' not in r.text  # not indexed
    assert web.get("/files/no-such-file").status_code == 404


def test_every_form_on_the_file_pages_posts_except_the_review_filter(web: TestClient, org: Org):
    with_record(org)
    org.web_sign_in(web, "pm.takahashi")
    for path in ("/files", f"/files/{FILE}", f"/files/{FILE}/grants", "/grants/review"):
        html = web.get(path).text
        no_inline_script_or_style(html)
        forms = [f for f in re.findall(r"<form\b[^>]*>", html) if 'data-testid="review-filter"' not in f]
        assert forms, path
        assert all('method="post"' in f for f in forms), (path, forms)


# ------------------------------------------------------------------------------------ records


def test_record_page_masks_the_my_number_and_records_the_read_MN_6a_MN_3b(web: TestClient, org: Org):
    rid = with_record(org)
    token = org.web_sign_in(web, "clerk.ito")
    before = len(events(org, Event.RECORD_READ, "success"))
    r = web.post(f"/files/{FILE}/records/{rid}", data={"csrf_token": token, "purpose": P1})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    no_inline_script_or_style(r.text)
    assert MASKED in r.text and MN not in r.text
    assert "伊藤 翔" in r.text and "1990-04-01" in r.text
    assert 'data-testid="classification"' in r.text and "C3-I2-A1" in r.text and "持出禁止" in r.text
    assert 'data-testid="reveal-my_number"' in r.text
    assert f'data-testid="record-purpose">{P1}<' in r.text
    assert "JST" in r.text  # times in Asia/Tokyo
    read = events(org, Event.RECORD_READ, "success")
    assert len(read) == before + 1 and read[-1].purpose == P1 and read[-1].actor_name == "clerk.ito"
    # The purpose is chosen in a form: a GET (a bookmark, a reload) goes back to the file page.
    r = web.get(f"/files/{FILE}/records/{rid}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/files/{FILE}"
    # Open by ID, typed in a form.
    r = web.post(f"/files/{FILE}/open", data={"csrf_token": token, "purpose": P1, "record_id": rid})
    assert r.status_code == 200 and MASKED in r.text


def test_record_refusals_are_messages_with_the_reason_and_are_recorded_SEC_45(web: TestClient, org: Org):
    rid = with_record(org)
    token = org.web_sign_in(web, "clerk.ito")
    r = web.post(f"/files/{FILE}/records/{rid}", data={"csrf_token": token, "purpose": P2})
    assert r.status_code == 403
    assert "利用目的が許可されていません" in r.text and "SEC-45" in r.text
    assert "Traceback" not in r.text and MASKED not in r.text
    denied = events(org, Event.RECORD_READ, "denied")
    assert denied and denied[-1].reason == "purpose_not_granted"
    r = web.post(f"/files/{FILE}/records/{rid}", data={"csrf_token": token, "purpose": ""})
    assert r.status_code == 422 and "利用目的を選んでください" in r.text
    r = web.post(f"/files/{FILE}/records/E9999", data={"csrf_token": token, "purpose": P1})
    assert r.status_code == 404 and "その記録はありません" in r.text
    # Someone with no grant at all (the protection manager: defining a file gives no data access).
    token = org.web_sign_in(web, "pm.takahashi")
    r = web.post(f"/files/{FILE}/records/{rid}", data={"csrf_token": token, "purpose": P1})
    assert r.status_code == 403 and "アクセス権限がありません" in r.text and "ANON-5" in r.text


def test_reveal_without_a_reveal_grant_is_refused_and_the_refusal_recorded_MN_6a_MN_3b(web: TestClient, org: Org):
    rid = with_record(org)
    token = org.web_sign_in(web, "clerk.ito")
    hx = {"HX-Request": "true", "X-CSRF-Token": token}
    r = web.post(f"/files/{FILE}/records/{rid}/reveal", data={"purpose": P1, "field": "my_number"}, headers=hx)
    assert r.status_code == 403  # htmx swaps 403 answers (base.html): the refusal shows in the cell
    assert r.headers["hx-retarget"] == "#reveal-msg-my_number" and r.headers["hx-reswap"] == "innerHTML"
    assert 'data-testid="reveal-refusal"' in r.text and "許可されていません" in r.text and "SEC-131" in r.text
    assert MN not in r.text and "<html" not in r.text
    denied = events(org, Event.RECORD_REVEALED, "denied")
    assert len(denied) == 1 and denied[0].reason == "action_not_granted"
    assert denied[0].logged.fields == ("my_number",) and denied[0].logged.records == (rid,)
    assert not events(org, Event.RECORD_REVEALED, "success")
    # Without htmx: a refusal page, with the way back to the record.
    r = web.post(f"/files/{FILE}/records/{rid}/reveal", data={"csrf_token": token, "purpose": P1,
                                                              "field": "my_number"})
    assert r.status_code == 403 and 'data-testid="refusal"' in r.text and MN not in r.text
    assert len(events(org, Event.RECORD_REVEALED, "denied")) == 2


def test_reveal_with_a_reveal_grant_shows_the_number_and_records_it_MN_6a_MN_3b(web: TestClient, org: Org):
    rid = with_record(org)
    grant(org, actions=("reveal",), fields=["my_number"])
    token = org.web_sign_in(web, "clerk.ito")
    page = web.post(f"/files/{FILE}/records/{rid}", data={"csrf_token": token, "purpose": P1})
    assert MASKED in page.text and MN not in page.text  # still masked until asked
    r = web.post(f"/files/{FILE}/records/{rid}/reveal", data={"purpose": P1, "field": "my_number"},
                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<td class="value revealed"')  # the cell, swapped in place
    assert f'data-testid="value-my_number">{MN}<' in r.text and 'data-testid="revealed-my_number"' in r.text
    shown = events(org, Event.RECORD_REVEALED, "success")
    assert len(shown) == 1
    assert shown[0].details["revealed"] == ["my_number"] and shown[0].purpose == P1
    assert shown[0].actor_name == "clerk.ito" and shown[0].logged.records == (rid,)
    assert MN not in str(shown[0].details)  # the record of the reveal never holds the number
    # Without htmx: the whole record page, with the number shown.
    r = web.post(f"/files/{FILE}/records/{rid}/reveal", data={"csrf_token": token, "purpose": P1,
                                                              "field": "my_number"})
    assert r.status_code == 200 and "<html" in r.text and MN in r.text
    assert len(events(org, Event.RECORD_REVEALED, "success")) == 2  # every reveal is recorded


def test_reveal_without_csrf_is_refused_and_nothing_is_revealed_or_recorded(web: TestClient, org: Org):
    rid = with_record(org)
    grant(org, actions=("reveal",), fields=["my_number"])
    token = org.web_sign_in(web, "clerk.ito")
    data = {"purpose": P1, "field": "my_number"}
    for headers, body in [
        ({"HX-Request": "true"}, data),
        ({"HX-Request": "true", "X-CSRF-Token": "forged"}, data),
        ({}, {**data, "csrf_token": "forged"}),
        ({"HX-Request": "true", "X-CSRF-Token": token, "Origin": "https://evil.example"}, data),
        ({"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}, data),
    ]:
        r = web.post(f"/files/{FILE}/records/{rid}/reveal", data=body, headers=headers)
        assert r.status_code == 403, headers
        assert "不正な送信" in r.text and MN not in r.text
    assert not events(org, Event.RECORD_REVEALED)  # neither allowed nor even attempted
    r = web.post(f"/files/{FILE}/records/{rid}", data={"purpose": P1})
    assert r.status_code == 403 and MASKED not in r.text
    assert not events(org, Event.RECORD_READ)


def test_search_by_my_number_is_posted_and_shows_masked_results_MN_6a_SEC_45(web: TestClient, org: Org):
    rid = with_record(org)
    token = org.web_sign_in(web, "clerk.ito")
    # Full-width digits with hyphens: the guard normalises; the value travels in the POST body only.
    r = web.post(f"/files/{FILE}/search", data={"csrf_token": token, "purpose": P1,
                                                "q_my_number": "１２３４-５６７８-９０１８"})
    assert r.status_code == 200, r.text
    results = r.text.split('data-testid="results"')[1].split("</table>")[0]
    assert f"<code>{rid}</code>" in results and "伊藤 翔" in results
    assert f'data-testid="result-my_number">{MASKED}<' in results and MN not in r.text
    assert "１２３４" not in r.text  # the typed My Number is not echoed back into the page
    assert f'action="/files/{FILE}/records/{rid}"' in results  # opened by POST, with the purpose
    searched = events(org, Event.RECORD_SEARCHED, "success")
    assert searched[-1].logged.records == (rid,) and searched[-1].details["where_fields"] == ["my_number"]
    assert searched[-1].purpose == P1
    # htmx: only the results are swapped in.
    r = web.post(f"/files/{FILE}/search", data={"purpose": P1, "q_employee_no": "E0001"},
                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert r.status_code == 200 and "<html" not in r.text and 'data-testid="results"' in r.text
    r = web.post(f"/files/{FILE}/search", data={"purpose": P1, "q_my_number": "123456789019"},
                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert 'data-testid="search-error"' in r.text and "チェックデジット" in r.text
    r = web.post(f"/files/{FILE}/search", data={"csrf_token": token, "purpose": P1, "q_employee_no": "E0404"})
    assert 'data-testid="no-results"' in r.text
    r = web.post(f"/files/{FILE}/search", data={"csrf_token": token, "purpose": P1})
    assert r.status_code == 422 and "検索する値を1つ以上入力してください" in r.text
    # No search route answers GET: a My Number can never travel in a URL.
    assert web.get(f"/files/{FILE}/search", params={"q_my_number": MN}).status_code == 405


def test_search_refused_for_fields_not_granted_SEC_131(web: TestClient, org: Org):
    with_record(org)
    grant(org, who="clerk.tanaka", fields=["employee_no", "name"])
    token = org.web_sign_in(web, "clerk.tanaka")
    r = web.post(f"/files/{FILE}/search", data={"csrf_token": token, "purpose": P1, "q_my_number": MN})
    assert r.status_code == 403 and "この項目を利用する権限がありません" in r.text
    assert events(org, Event.RECORD_SEARCHED, "denied")[-1].reason == "field_not_granted"


# ------------------------------------------------------------------------------------- grants


def test_grants_page_is_refused_to_a_clerk_SEC_130(web: TestClient, org: Org):
    with_record(org)
    for clerk in ("clerk.ito", "clerk.tanaka"):  # with a read grant, and with none
        token = org.web_sign_in(web, clerk)
        r = web.get(f"/files/{FILE}/grants")
        assert r.status_code == 403, clerk
        assert "SEC-130" in r.text and "保護管理者" in r.text and "Traceback" not in r.text
        r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "user": "clerk.ito", "actions": "reveal",
                                                    "purposes": P1})
        assert r.status_code == 403
    org.web_sign_in(web, "clerk.ito")
    assert 'data-testid="grants-link"' not in web.get(f"/files/{FILE}").text  # not offered
    assert len(events(org, Event.GRANT_DENIED, "denied")) == 2
    assert len(grants.list_grants(org.inst.hogo, org.p("pm.takahashi"), FILE)) == 1


def test_protection_manager_adds_and_revokes_grants_never_to_self_SEC_130_SEC_19(web: TestClient, org: Org):
    token = org.web_sign_in(web, "pm.takahashi")
    page = web.get(f"/files/{FILE}/grants")
    assert page.status_code == 200 and 'data-testid="no-grants"' in page.text
    assert 'data-testid="grant-form"' in page.text and 'value="reveal"' in page.text
    r = web.post(f"/files/{FILE}/grants", data={
        "csrf_token": token, "user": "clerk.ito", "actions": ["read", "reveal"], "purposes": [P1],
        "fields": ["employee_no", "name", "my_number"], "segments": "KYUYO, $own_department",
        "valid_until": "2031-03-31", "note": "年末調整の担当",
    })
    assert r.status_code == 201, r.text
    assert 'data-testid="notice"' in r.text and "clerk.ito" in r.text
    row = r.text.split('data-grantee="user:clerk.ito"')[1].split("</tr>")[0]
    assert "マスク解除" in row and "個人番号" in row and "KYUYO" in row and "2031-03-31" in row
    assert "年末調整の担当" in row
    [g] = grants.list_grants(org.inst.hogo, org.p("pm.takahashi"), FILE)
    assert g.actions == ("read", "reveal") and g.fields == ("employee_no", "name", "my_number")
    assert g.segments == ("KYUYO", "$own_department") and g.granted_by == "pm.takahashi"
    assert events(org, Event.GRANT_CREATED)[-1].actor_name == "pm.takahashi"

    # SEC-19: not to oneself, nor to a role one holds; shown in the form, with what was typed kept.
    r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "user": "pm.takahashi", "actions": "manage",
                                                "purposes": P1})
    assert r.status_code == 403 and 'data-testid="grant-error"' in r.text and "SEC-19" in r.text
    assert 'value="pm.takahashi"' in r.text
    r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "role": "protection_manager",
                                                "role_department": "KYUYO", "actions": "read", "purposes": P1},
                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert r.status_code == 403 and "SEC-19" in r.text and r.text.lstrip().startswith('<div id="grants-body">')
    assert [e.reason for e in events(org, Event.GRANT_DENIED)] == ["self_approval_forbidden"] * 2

    # Validation problems next to the field (htmx answers 200 so the form is swapped in).
    r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "user": "clerk.tanaka", "purposes": P1})
    assert r.status_code == 422 and 'data-testid="error-actions"' in r.text and "操作を1つ以上" in r.text
    r = web.post(f"/files/{FILE}/grants", data={"user": "clerk.tanaka", "actions": "read"},
                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert r.status_code == 200 and 'data-testid="error-purposes"' in r.text
    r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "user": "nobody", "actions": "read",
                                                "purposes": P1})
    assert r.status_code == 404 and 'data-testid="error-user"' in r.text and "その利用者はいません" in r.text
    r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "role": "clerk", "role_department": "JINJI",
                                                "actions": "read", "purposes": P1, "valid_until": "31/03/2031"})
    assert r.status_code == 422 and 'data-testid="error-valid_until"' in r.text

    # A role grant, then revoking the user grant.
    r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "role": "clerk", "role_department": "JINJI",
                                                "actions": "read", "purposes": P2, "valid_until": "2031-03-31"})
    assert r.status_code == 201 and "事務取扱担当者 @JINJI" in r.text
    r = web.post(f"/files/{FILE}/grants/{g.id}/revoke", data={},
                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert r.status_code == 200 and "権限を取り消しました" in r.text
    assert 'data-grantee="user:clerk.ito"' not in r.text and 'data-grantee="role:clerk@JINJI"' in r.text
    assert [x.grantee for x in grants.list_grants(org.inst.hogo, org.p("pm.takahashi"), FILE)] == ["role:clerk@JINJI"]
    assert events(org, Event.GRANT_REVOKED)[-1].actor_name == "pm.takahashi"


def test_a_clerk_holding_manage_may_grant_to_others_SEC_130(web: TestClient, org: Org):
    grant(org, who="clerk.tanaka", actions=("manage",))
    token = org.web_sign_in(web, "clerk.tanaka")
    assert 'data-testid="grants-link"' in web.get(f"/files/{FILE}").text
    r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "user": "clerk.ito", "actions": "read",
                                                "purposes": P1})
    assert r.status_code == 201


def test_auditor_may_look_at_grants_but_not_change_them_SEC_130(web: TestClient, org: Org):
    grant(org)
    token = org.web_sign_in(web, "auditor.watanabe")
    assert web.get(f"/files/{FILE}/grants").status_code == 200
    r = web.post(f"/files/{FILE}/grants", data={"csrf_token": token, "user": "clerk.tanaka", "actions": "read",
                                                "purposes": P1})
    assert r.status_code == 403 and "SEC-130" in r.text


# ---------------------------------------------------------------------------------- review


def test_review_page_lists_findings_SEC_131(web: TestClient, org: Org):
    hogo = org.inst.hogo
    accounts.create_user(hogo, org.admin, username="temp.sato", department="KYUYO", roles=["clerk"],
                         password=USER_PASSWORD, ctx=CTX)
    grant(org, who="temp.sato")
    grant(org, who="clerk.tanaka", valid_until=hogo.clock.now() + dt.timedelta(days=30))
    grant(org, actions=("read", "create"))
    org.inst.clock.advance(seconds=100 * 86400)
    guard.create_record(hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX)  # uses clerk.ito's grant
    accounts.disable_user(hogo, org.inst.admin_principal(), "temp.sato", reason="異動", ctx=CTX)

    org.web_sign_in(web, "auditor.watanabe")
    assert 'data-testid="review-link"' in web.get("/files").text
    r = web.get("/grants/review")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    no_inline_script_or_style(r.text)
    assert 'data-testid="review-summary"' in r.text and "3件の権限のうち、2件" in r.text

    def row(grantee: str) -> str:
        return r.text.split(f'data-grantee="{grantee}"')[1].split("</tr>")[0]

    assert "無効化された利用者" in row("user:temp.sato") and "一度も使われていない" in row("user:temp.sato")
    assert "期限切れ" in row("user:clerk.tanaka") and 'class="flagged"' in r.text
    assert "問題なし" in row("user:clerk.ito")

    # Filter by file and by days (a plain GET form: no personal data in it).
    r = web.get("/grants/review", params={"file": FILE, "unused_days": "1000"})
    assert r.status_code == 200 and "一度も使われていない" not in r.text and "無効化された利用者" in r.text
    r = web.get("/grants/review", params={"unused_days": "0"})
    assert r.status_code == 422 and 'data-testid="review-error"' in r.text
    r = web.get("/grants/review", params={"file": "no-such-file"})
    assert r.status_code == 404 and 'data-testid="review-error"' in r.text

    # A clerk without manage is refused, with the reason.
    org.web_sign_in(web, "clerk.ito")
    r = web.get("/grants/review")
    assert r.status_code == 403 and "SEC-130" in r.text
    assert 'data-testid="review-link"' not in web.get("/files").text


def test_english_record_page_and_refusal(web: TestClient, org: Org):
    rid = with_record(org)
    token = org.web_sign_in(web, "clerk.ito")
    web.get("/lang/en")
    r = web.post(f"/files/{FILE}/records/{rid}", data={"csrf_token": token, "purpose": P1})
    assert '<html lang="en">' in r.text and "Record E0001" in r.text and "Reveal" in r.text
    assert "Classification" in r.text and "No copying" in r.text
    r = web.post(f"/files/{FILE}/records/{rid}/reveal", data={"purpose": P1, "field": "my_number"},
                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert "This action is not granted to you (SEC-131)." in r.text
