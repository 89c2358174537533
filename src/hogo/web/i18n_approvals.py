"""Japanese and English text of the approval inbox (``hogo.web.approval_routes``), added to
``hogo.web.i18n.MESSAGES`` when that module is imported (by ``hogo.web.routes.install``)."""

from __future__ import annotations

from hogo.domain.events import Event
from hogo.web.i18n import MESSAGES

APPROVAL_MESSAGES: dict[str, tuple[str, str]] = {
    "nav.approvals": ("承認", "Approvals"),
    "approvals.title": ("承認の申請", "Approval requests"),
    "approvals.intro": (
        "あなたが申請したもの、あなたが決裁できるもの、決裁したものです。自分の申請は決裁できません。"
        "決裁者が申請者本人や対象者本人であるときは、上位者へ回付されます（SEC-19）。訂正は承認されると記録に反映され、"
        "訂正前の版が保存されます（ANON-8）。",
        "Requests you made, may decide or have decided. Nobody decides their own request; a conflicted approver's "
        "step goes to their superior (SEC-19). An approved correction is applied to the record and the previous "
        "version is kept (ANON-8).",
    ),
    "approvals.filter": ("表示する申請", "Show"),
    "approvals.filter.open": ("未完了", "Open"),
    "approvals.filter.pending": ("承認待ち", "Pending"),
    "approvals.filter.applied": ("反映済", "Applied"),
    "approvals.filter.rejected": ("却下", "Rejected"),
    "approvals.filter.all": ("すべて", "All"),
    "approvals.none": ("該当する申請はありません。", "No requests."),
    "approvals.id": ("番号", "No."),
    "approvals.kind": ("種別", "Kind"),
    "approvals.status": ("状態", "Status"),
    "approvals.requester": ("申請者", "Requester"),
    "approvals.subject": ("対象", "Subject"),
    "approvals.fields": ("項目", "Fields"),
    "approvals.reason": ("理由", "Reason"),
    "approvals.steps": ("承認経路", "Approval steps"),
    "approvals.requested": ("申請日時", "Requested"),
    "approvals.decide": ("決裁", "Decide"),
    "approvals.decision_reason": ("決裁の理由（却下するときは必須）", "Reason (required to reject)"),
    "approvals.approve": ("承認", "Approve"),
    "approvals.reject": ("却下", "Reject"),
    "approvals.waiting": ("未決", "waiting"),
    "approvals.escalated": ("上位者へ回付", "escalated"),
    "approvals.approved_msg": ("申請 {id} を承認しました（状態: {status}）。", "Approved request {id} (now {status})."),
    "approvals.rejected_msg": ("申請 {id} を却下しました。", "Rejected request {id}."),
    "approvals.status.pending": ("承認待ち", "pending"),
    "approvals.status.approved": ("承認済", "approved"),
    "approvals.status.rejected": ("却下", "rejected"),
    "approvals.status.applied": ("反映済", "applied"),
    "approvals.status.failed": ("失敗", "failed"),
    "approvals.status.cancelled": ("取消", "cancelled"),
    "err.own_request": ("自分の申請は決裁できません（SEC-19）。", "You cannot decide your own request (SEC-19)."),
    "err.conflicted": (
        "自分に関する申請は決裁できません。上位者へ回付しました（SEC-19）。",
        "You cannot decide a request about yourself; it has been sent to your superior (SEC-19).",
    ),
    "err.already_decided": (
        "この申請の別の段階を既に決裁しています。残りは他の決裁者が決裁します（SEC-19）。",
        "You decided another step of this request; another approver decides the rest (SEC-19).",
    ),
    "err.not_an_approver": ("あなたはこの申請の決裁者ではありません。", "You are not an approver of this request."),
    "err.approval_not_pending": ("この申請は既に決裁済みです。", "This request has been decided already."),
    "err.approval_not_found": ("その申請はありません。", "No such request."),
    "err.revision_conflict": (
        "申請の後に記録が変更されたため、訂正は反映されませんでした。最新の記録に基づいて申請し直してください（ANON-8）。",
        "The record changed after the request, so the correction was not applied: request it again on the "
        "current record (ANON-8).",
    ),
}

# The approval events in words (the audit pages name events by these).
APPROVAL_MESSAGES.update({"event." + e.value: pair for e, pair in {
    Event.APPROVAL_REQUESTED: ("承認の申請", "Approval requested"),
    Event.APPROVAL_APPROVED: ("申請の承認", "Request approved"),
    Event.APPROVAL_REJECTED: ("申請の却下", "Request rejected"),
    Event.APPROVAL_ESCALATED: ("上位者への回付", "Request escalated"),
    Event.APPROVAL_CANCELLED: ("申請の取消し", "Request cancelled"),
    Event.APPROVAL_FAILED: ("申請の反映失敗", "Request failed"),
    Event.RECORD_CORRECTED: ("記録の訂正", "Record corrected"),
}.items()})

_clash = sorted(k for k in APPROVAL_MESSAGES if k in MESSAGES and MESSAGES[k] != APPROVAL_MESSAGES[k])
assert not _clash, f"approval texts would replace shared ones: {_clash}"
MESSAGES.update(APPROVAL_MESSAGES)
