"""Japanese and English text of the deletion certificate pages (``hogo.web.erasure_routes``), added to
``hogo.web.i18n.MESSAGES`` when that module is imported (by ``hogo.web.routes.install``)."""

from __future__ import annotations

from hogo.domain.events import Event
from hogo.web.i18n import MESSAGES

ERASURE_MESSAGES: dict[str, tuple[str, str]] = {
    "nav.certificates": ("消去証明", "Deletion certificates"),
    "certs.title": ("消去証明", "Deletion certificates"),
    "certs.intro": (
        "記録やファイルの消去・廃棄ごとに、何を、いつ、どの方法で、誰の指示で消去したかを記録し、"
        "署名した消去証明です。消去は暗号鍵の破棄（クリプトシュレッディング）によるもので、以前のバックアップからも"
        "復元できません。証明には個人番号や本人の情報は含まれません（ANON-10、SEC-50、MN-5d）。",
        "Each erasure or disposal of records or files is recorded with a signed certificate: what, when, how and "
        "on whose order. Erasure destroys the encryption keys (crypto-shredding), so no earlier backup can bring "
        "the data back. Certificates hold no My Number and no personal data (ANON-10, SEC-50, MN-5d).",
    ),
    "certs.none": ("消去証明はありません。", "No deletion certificates."),
    "certs.id": ("番号", "No."),
    "certs.kind": ("種別", "Kind"),
    "certs.kind.record": ("記録の消去", "Records erased"),
    "certs.kind.file": ("ファイルの消去", "File erased"),
    "certs.kind.retention": ("保存期間満了による廃棄", "Disposal after retention"),
    "certs.status": ("状態", "Status"),
    "certs.status.complete": ("完了", "Complete"),
    "certs.status.purged": ("鍵の破棄待ち", "Keys to destroy"),
    "certs.status.pending": ("処理中", "In progress"),
    "certs.file": ("ファイル", "File"),
    "certs.records": ("件数", "Records"),
    "certs.fields": ("消去した項目", "Fields erased"),
    "certs.method": ("消去の方法", "Method"),
    "certs.keys": ("破棄した鍵の版", "Key versions destroyed"),
    "certs.ordered_by": ("指示者", "Ordered by"),
    "certs.ordered_at": ("指示日時", "Ordered"),
    "certs.completed_at": ("完了日時", "Completed"),
    "certs.reason": ("理由", "Reason"),
    "certs.confirmed": ("確認（hogoによる検査）", "Confirmed (hogo's check)"),
    "certs.rule": ("保存期間", "Retention rule"),
    "certs.confirmed_by": ("確認者（第三者）", "Confirmed by (second person)"),
    "certs.not_confirmed": ("未確認（hogo certificate confirm で確認）", "Not yet (hogo certificate confirm)"),
    "certs.attachments": ("委託先の消去証明", "Contractors' certificates"),
    "certs.signature": ("署名", "Signature"),
    "certs.verify_hint": (
        "オフラインで検証するには: hogo certificate show {id} --out cert.json の後、"
        "hogo certificate verify cert.json --key 公開鍵ファイル",
        "To verify offline: hogo certificate show {id} --out cert.json, then "
        "hogo certificate verify cert.json --key PUBLIC-KEY-FILE",
    ),
    "certs.back": ("一覧へ戻る", "Back to the list"),
}

ERASURE_MESSAGES.update({"event." + e.value: pair for e, pair in {
    Event.RECORD_ERASED: ("記録の消去", "Records erased"),
    Event.FILE_ERASED: ("ファイルの消去", "File erased"),
    Event.KEYS_DESTROYED: ("暗号鍵の破棄", "Keys destroyed"),
    Event.DELETION_CERTIFIED: ("消去証明の発行", "Deletion certified"),
    Event.DELETION_CONFIRMED: ("消去の確認", "Deletion confirmed"),
    Event.CERTIFICATE_ATTACHED: ("委託先の消去証明の添付", "Contractor's certificate attached"),
    Event.RETENTION_RUN: ("保存期間満了の処理", "Retention run"),
}.items()})

_clash = sorted(k for k in ERASURE_MESSAGES if k in MESSAGES and MESSAGES[k] != ERASURE_MESSAGES[k])
assert not _clash, f"erasure texts would replace shared ones: {_clash}"
MESSAGES.update(ERASURE_MESSAGES)
