"""Japanese and English text of the take-out register (``hogo.web.takeout_routes``), added to
``hogo.web.i18n.MESSAGES`` when that module is imported (by ``hogo.web.routes.install``)."""

from __future__ import annotations

from hogo.domain.events import Event
from hogo.services import takeouts
from hogo.web.i18n import MESSAGES

TAKEOUT_MESSAGES: dict[str, tuple[str, str]] = {
    "nav.takeouts": ("持出し", "Take-outs"),
    "takeouts.title": ("持出管理簿", "Take-out register"),
    "takeouts.intro": (
        "個人データの持出し・提供の記録です。持出しには承認が必要で（機密性3情報は情報セキュリティ責任者と保護管理者の両方、"
        "SEC-47(2)、SEC-48(3)）、申請者は自分の申請を決裁できません（SEC-19）。持出しは必ず暗号化され（SEC-49）、"
        "返却・廃棄は持ち出した本人以外が確認します。",
        "Take-outs and provisions of personal data. Each needs approval (for confidentiality 3 both the information-"
        "security officer and the protection manager, SEC-47(2), SEC-48(3)); nobody decides their own request "
        "(SEC-19). Copies always leave encrypted (SEC-49); someone other than the taker confirms their return or "
        "disposal.",
    ),
    "takeouts.new": ("持出しを申請", "Request a take-out"),
    "takeouts.reminder": ("督促: 持出し #{id} の返却・廃棄期限（{due}）を過ぎています。"
                          "返却または廃棄して申告してください。",
                          "Reminder: take-out #{id} was due back by {due}. Return or dispose of it and declare it."),
    "takeouts.filter": ("表示する記録", "Show"),
    "takeouts.filter.open": ("未完了", "Open"),
    "takeouts.filter.all": ("すべて", "All"),
    "takeouts.none": ("該当する持出しはありません。", "No take-outs."),
    "takeouts.id": ("番号", "No."),
    "takeouts.takeout": ("持出し #{id}", "Take-out #{id}"),
    "takeouts.status": ("状態", "Status"),
    "takeouts.file": ("ファイル", "File"),
    "takeouts.fields": ("項目", "Fields"),
    "takeouts.selection": ("対象の記録", "Records"),
    "takeouts.selection_all": ("権限の範囲のすべての記録", "every record your grants cover"),
    "takeouts.records_n": ("記録ID {n} 件", "{n} record IDs"),
    "takeouts.purpose": ("利用目的", "Purpose"),
    "takeouts.requester": ("申請者", "Requester"),
    "takeouts.recipient": ("宛先", "Recipient"),
    "takeouts.recipient_mode.public_key": ("公開鍵", "public key"),
    "takeouts.recipient_mode.passphrase": ("パスフレーズ", "passphrase"),
    "takeouts.destination": ("持出先", "Destination"),
    "takeouts.transport": ("持出方法", "Transport"),
    "takeouts.media_id": ("媒体番号", "Medium ID"),
    "takeouts.due": ("返却・廃棄期限", "Due back by"),
    "takeouts.marks": ("格付・取扱制限", "Marks"),
    "takeouts.approval": ("承認", "Approval"),
    "takeouts.approval_request": ("承認申請 #{id}", "Approval request #{id}"),
    "takeouts.requested": ("申請日時", "Requested"),
    "takeouts.taken_out": ("持出し日時", "Taken out"),
    "takeouts.downloads": ("ダウンロード {n} 回・{records} 件・管理番号 {package}",
                           "{n} download(s), {records} records, package {package}"),
    "takeouts.overdue_since": ("{when} から期限超過・督促 {n} 回", "overdue since {when}, {n} reminder(s)"),
    "takeouts.declared": ("本人の申告", "Declared by the taker"),
    "takeouts.confirmed": ("確認", "Confirmed"),
    "takeouts.note": ("備考", "Note"),
    "takeouts.flags": ("区分", "Flags"),
    "takeouts.emergency": ("緊急（事後報告）", "emergency (reported afterwards)"),
    "takeouts.report_due": ("事後報告の期限", "Report due"),
    "takeouts.provision": ("提供（閲覧範囲外）", "provision (outside the viewing scope)"),
    "takeouts.download": ("パッケージをダウンロード", "Download the package"),
    "takeouts.download_hint": (
        "暗号化されたパッケージをダウンロードします。記録され、大量持出しの警告の対象になります。サーバーには複製を残しません。",
        "Downloads the encrypted package. It is recorded and counts toward the bulk-export alerts; the server "
        "keeps no copy.",
    ),
    "takeouts.passphrase": ("パスフレーズ（12文字以上。受取人には別の経路で伝えてください）",
                            "Passphrase (12 characters or more; give it to the recipient by another channel)"),
    "takeouts.declare": ("返却・廃棄を申告", "Declare returned or disposed of"),
    "takeouts.confirm": ("返却・廃棄を確認", "Confirm return or disposal"),
    "takeouts.returned": ("返却", "Returned"),
    "takeouts.disposed": ("廃棄", "Disposed of"),
    "takeouts.declared_msg": ("持出し {id} の{kind}を申告しました。保護管理者が確認します。",
                              "Declared take-out {id} {kind}; the file's manager confirms it."),
    "takeouts.confirmed_msg": ("持出し {id} の{kind}を確認しました。", "Confirmed take-out {id} {kind}."),
    "takeouts.requested_msg": ("持出し {id} を申請しました。承認者の決裁を待っています。",
                               "Requested take-out {id}; it waits for its approvers."),
    "takeouts.form.fields_hint": ("項目名をカンマ区切りで（例: employee_no,name）", "Field names, comma-separated"),
    "takeouts.form.where": ("対象の記録（索引付き項目=値、任意）", "Records (indexed FIELD=VALUE, optional)"),
    "takeouts.form.recipient_key": ("受取人の公開鍵（hogo package keygen が表示するもの）",
                                    "Recipient's public key (as hogo package keygen prints it)"),
    "takeouts.form.use_passphrase": ("公開鍵の代わりにパスフレーズで保護する（ダウンロード時に入力）",
                                     "Protect it with a passphrase instead (entered at download)"),
    "takeouts.form.outside_scope": ("閲覧範囲外への提供", "Provision outside the viewing scope"),
    "takeouts.form.emergency": ("緊急（承認前に持ち出し、事後に報告する）",
                                "Emergency (take it out before approval, report afterwards)"),
    "takeouts.form.submit": ("申請する", "Request"),
    "takeouts.transport.download": ("ダウンロード", "download"),
    "takeouts.transport.media": ("記録媒体", "media"),
    "takeouts.transport.transmission": ("送信", "transmission"),
    "err.takeout_restricted": (
        "このファイルの取扱制限により持ち出せません（複製禁止・持出禁止、または配付禁止の情報の閲覧範囲外への提供）。",
        "The file's handling restrictions forbid this take-out (no copy, no take-out, or no distribution outside "
        "the viewing scope).",
    ),
    "err.takeout_not_found": ("その持出しはありません。", "No such take-out."),
    "err.takeout_not_approved": ("まだ承認されていません。", "It has not been approved yet."),
    "err.takeout_closed": ("この持出しは終了しています。", "This take-out is closed."),
    "err.takeout_past_due": ("返却・廃棄期限を過ぎています。", "It is past its due date."),
    "err.takeout_not_out": ("持ち出されていません。", "Nothing has been taken out."),
    "err.downloaded_once": ("読後廃棄の情報は一度しかダウンロードできません。",
                            "Destroy-after-reading information downloads once."),
    "err.not_requester": ("ダウンロードできるのは申請者だけです。", "Only the requester downloads it."),
    "err.not_a_confirmer": ("返却・廃棄を確認できるのは保護管理者、総括保護管理者または"
                            "情報セキュリティ責任者です（SEC-19）。",
                            "Only the file's protection manager, the general protection manager or the "
                            "information-security officer confirms a return or disposal (SEC-19)."),
    "err.emergency_not_allowed": ("緊急持出しはこのシステムでは認められていません（SEC-27）。",
                                  "Emergency take-outs are not allowed here (SEC-27)."),
    "err.report_required": ("緊急持出しの事後報告は取り消せません（SEC-27）。",
                            "An emergency take-out's report cannot be withdrawn (SEC-27)."),
}
TAKEOUT_MESSAGES.update({f"takeouts.status.{k}": v for k, v in takeouts.STATUS_LABELS.items()})

TAKEOUT_MESSAGES.update({"event." + e.value: pair for e, pair in {
    Event.TAKEOUT_REQUESTED: ("持出しの申請", "Take-out requested"),
    Event.TAKEOUT_APPROVED: ("持出しの承認", "Take-out approved"),
    Event.TAKEOUT_CLOSED: ("持出しの終了（却下・取消・期限切れ）", "Take-out closed (rejected, cancelled or expired)"),
    Event.TAKEOUT_TAKEN_OUT: ("持出し（パッケージのダウンロード）", "Taken out (package downloaded)"),
    Event.TAKEOUT_DECLARED: ("返却・廃棄の申告", "Return or disposal declared"),
    Event.TAKEOUT_CONFIRMED: ("返却・廃棄の確認", "Return or disposal confirmed"),
    Event.TAKEOUT_OVERDUE: ("持出しの期限超過", "Take-out overdue"),
    Event.TAKEOUT_REMINDED: ("持出しの督促", "Take-out reminder"),
    Event.TAKEOUT_REPORT_OVERDUE: ("緊急持出しの事後報告の遅延", "Emergency take-out report overdue"),
}.items()})

_clash = sorted(k for k in TAKEOUT_MESSAGES if k in MESSAGES and MESSAGES[k] != TAKEOUT_MESSAGES[k])
assert not _clash, f"take-out texts would replace shared ones: {_clash}"
MESSAGES.update(TAKEOUT_MESSAGES)
