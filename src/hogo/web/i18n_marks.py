"""Japanese and English text of the marks and working-copy pages (``hogo.web.marks_routes``), added to
``hogo.web.i18n.MESSAGES`` when that module is imported."""

from __future__ import annotations

from hogo.domain.events import Event
from hogo.web.i18n import MESSAGES

MARKS_MESSAGES: dict[str, tuple[str, str]] = {
    "marks.badge": ("表示", "Marks"),
    "marks.title": ("格付と取扱制限の変更", "Change the marks"),
    "marks.intro": (
        "格付と取扱制限を見直せるのは、決定した者（ファイルを定義した保護管理者）、その後任者（ファイルの課室の保護管理者）、"
        "その上位者（総括保護管理者）だけです。変更は定義の新しい版になり、変更前後・変更者・理由・日時が記録されます（SEC-46）。"
        "特定個人情報ファイルは機密性3のままです。",
        "Only the person who decided the marks (the protection manager who defined the file), their successor (a "
        "protection manager of the file's department) or their superior (the general protection manager) may "
        "revise them. A change is a new definition version, kept with before, after, who, why and when (SEC-46). "
        "My Number files stay confidentiality 3.",
    ),
    "marks.confidentiality": ("機密性", "Confidentiality"),
    "marks.integrity": ("完全性", "Integrity"),
    "marks.availability": ("可用性", "Availability"),
    "marks.restrictions": ("取扱制限", "Restrictions"),
    "marks.reason": ("変更の理由（必須）", "Reason (required)"),
    "marks.submit": ("変更する", "Change"),
    "marks.changed": ("格付と取扱制限を変更しました（第{version}版）。", "Changed the marks (version {version})."),
    "marks.history": ("変更履歴", "History"),
    "marks.no_history": ("定義してから変更されていません。", "Unchanged since the file was defined."),
    "marks.when": ("日時", "When"),
    "marks.version": ("版", "Version"),
    "marks.before": ("変更前", "Before"),
    "marks.after": ("変更後", "After"),
    "marks.by": ("変更者", "By"),
    "marks.basis": ("根拠", "Basis"),
    "marks.basis.decider": ("決定者", "decider"),
    "marks.basis.successor": ("後任者", "successor"),
    "marks.basis.superior": ("上位者", "superior"),
    "nav.workcopies": ("作業用複製", "Working copies"),
    "wc.title": ("作業用の一時的な複製", "Temporary working copies"),
    "wc.intro": (
        "加工作業などのための一時的な複製です。必要な項目と記録だけを暗号化して hogo の中に保持し、"
        "期限が来ると自動で廃棄されます。"
        "読めるのは保持者だけで、廃棄後はファイルの保護管理者が消去を確認します（ANON-17）。",
        "Temporary copies for processing: only the fields and records needed, kept encrypted inside hogo, disposed "
        "of automatically at their deadline. Only the holder reads one; after disposal the file's protection "
        "manager confirms the erasure (ANON-17).",
    ),
    "wc.outstanding": ("保持中の複製", "Outstanding copies"),
    "wc.awaiting": ("消去確認待ち", "Awaiting confirmation of erasure"),
    "wc.none": ("ありません。", "None."),
    "wc.id": ("ID", "ID"),
    "wc.file": ("ファイル", "File"),
    "wc.holder": ("保持者", "Holder"),
    "wc.purpose": ("利用目的", "Purpose"),
    "wc.fields": ("項目", "Fields"),
    "wc.records": ("件数", "Records"),
    "wc.expires": ("期限", "Expires"),
    "wc.disposed": ("廃棄", "Disposed"),
    "wc.status.live": ("保持中", "live"),
    "wc.status.disposed": ("廃棄済", "disposed"),
    "wc.reason.expired": ("期限切れ", "expired"),
    "wc.reason.on_demand": ("手動", "on demand"),
    "wc.reason.source_no_copy": ("複製元が複製禁止に", "source marked no-copy"),
    "wc.read": ("内容を表示", "Show contents"),
    "wc.dispose": ("廃棄する", "Dispose of"),
    "wc.confirm": ("消去を確認", "Confirm erasure"),
    "wc.note": ("確認した内容", "What was checked"),
    "wc.confirmed": ("消去確認", "Erasure confirmed"),
    "wc.disposed_msg": (
        "作業用複製 {id} を廃棄しました（鍵を破棄しデータを削除）。",
        "Disposed of working copy {id} (key destroyed, data deleted).",
    ),
    "wc.confirmed_msg": ("作業用複製 {id} の消去を確認しました。", "Confirmed the erasure of working copy {id}."),
    "wc.contents": ("複製の内容", "Contents"),
    "wc.read_note": ("この表示は記録されています。", "This read is recorded."),
    "wc.record_id": ("記録ID", "Record ID"),
    "err.marks_change_refused": (
        "格付と取扱制限を変更できるのは、決定した者、その後任者、その上位者だけです（SEC-46）。",
        "Only the decider of the marks, their successor or their superior may change them (SEC-46).",
    ),
    "err.working_copy_refused": (
        "この情報の取扱制限により作業用の複製は作れません。",
        "The restrictions forbid a working copy.",
    ),
    "err.not_holder": (
        "作業用複製を読めるのは保持者だけです（ANON-17）。",
        "Only the holder may read a working copy (ANON-17).",
    ),
    "err.not_confirmer": (
        "消去の確認はファイルの保護管理者（または総括保護管理者）が行います。保持者は確認できません（ANON-17）。",
        "The file's protection manager (or the general one) confirms erasure, not the holder (ANON-17).",
    ),
    "err.working_copy_gone": (
        "この作業用複製は期限切れか廃棄済みです。",
        "This working copy has expired or been disposed of.",
    ),
    "err.working_copy_not_found": ("その作業用複製はありません。", "No such working copy."),
}

MARKS_MESSAGES.update({"event." + e.value: pair for e, pair in {
    Event.MARKS_CHANGED: ("格付・取扱制限の変更", "Marks changed"),
    Event.RECORDS_COPIED: ("作業用複製への読出し", "Records copied"),
    Event.WORKCOPY_CREATED: ("作業用複製の作成", "Working copy created"),
    Event.WORKCOPY_READ: ("作業用複製の閲覧", "Working copy read"),
    Event.WORKCOPY_DISPOSED: ("作業用複製の廃棄", "Working copy disposed of"),
    Event.WORKCOPY_CONFIRMED: ("作業用複製の消去確認", "Working copy erasure confirmed"),
}.items()})

_clash = sorted(k for k in MARKS_MESSAGES if k in MESSAGES and MESSAGES[k] != MARKS_MESSAGES[k])
assert not _clash, f"marks texts would replace shared ones: {_clash}"
MESSAGES.update(MARKS_MESSAGES)
