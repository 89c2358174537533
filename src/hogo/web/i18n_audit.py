"""Japanese and English text of the audit-log pages (``hogo.web.audit_routes``), added to
``hogo.web.i18n.MESSAGES`` when that module is imported (by ``hogo.web.routes.install``, before the
first request). Kept apart so the log pages can grow without edits to the shared dictionary.
"""

from __future__ import annotations

from hogo.domain.events import Event
from hogo.web.i18n import MESSAGES

AUDIT_MESSAGES: dict[str, tuple[str, str]] = {
    "nav.audit": ("監査ログ", "Audit log"),
    # --- search (/audit)
    "audit.title": ("監査ログ", "Audit log"),
    "audit.intro": (
        "個人データへのアクセス、サインイン、権限の変更など、すべての操作の記録です（MN-3b、SEC-107(2)、SEC-132）。"
        "記録は改ざんを検知できる形（Merkle木と署名付きチェックポイント）で保存されています。",
        "The record of every action: access to personal data, sign-ins, changes of rights (MN-3b, SEC-107(2), "
        "SEC-132). It is kept tamper-evident: a Merkle tree under signed checkpoints.",
    ),
    "audit.own_only": (
        "あなた自身の操作履歴（あなたが行った操作と、あなたのアカウントに関する操作）だけが表示されます。"
        "ログ全体を閲覧できるのは、監査責任者、CSIRT、総括保護管理者です。",
        "You see only your own history: what you did, and what was done to your account. The whole log is "
        "for auditors, the CSIRT and the general protection manager.",
    ),
    "audit.logged_note": (
        "ログの閲覧も、それ自体がログに記録されます（ANON-12）。",
        "Reading the log is itself recorded in the log (ANON-12).",
    ),
    "audit.search_title": ("検索条件", "Search"),
    "audit.f.user": ("利用者（ユーザー名）", "User (user name)"),
    "audit.f.user_hint": ("その利用者が行った操作と、その利用者に関する操作。", "Actions by or about this user."),
    "audit.f.file": ("ファイル（コード）", "File (code)"),
    "audit.f.record": ("記録ID", "Record ID"),
    "audit.f.record_hint": ("記録IDで探すときは、ファイルも指定します。", "A record is looked up within its file."),
    "audit.f.event": ("イベント", "Event"),
    "audit.f.outcome": ("結果", "Outcome"),
    "audit.f.since": ("開始日", "From (date)"),
    "audit.f.until": ("終了日", "To (date)"),
    "audit.f.until_hint": ("その日の終わりまでを含みます。", "Includes all of that day."),
    "audit.any": ("（すべて）", "(any)"),
    "audit.search": ("検索", "Search"),
    "audit.clear": ("条件をクリア", "Clear"),
    "audit.results": ("検索結果", "Results"),
    "audit.col.seq": ("番号", "Entry"),
    "audit.col.time": ("日時", "Time"),
    "audit.col.event": ("イベント", "Event"),
    "audit.col.outcome": ("結果", "Outcome"),
    "audit.col.actor": ("操作者", "Actor"),
    "audit.col.file": ("ファイル", "File"),
    "audit.col.records": ("記録数", "Records"),
    "audit.col.purpose": ("利用目的", "Purpose"),
    "audit.col.client": ("接続元", "From"),
    "audit.shown": ("{n}件（新しい順）", "{n} entries, newest first"),
    "audit.none": ("条件に合う記録はありません。", "No entries match."),
    "audit.older": ("さらに古い記録", "Older entries"),
    "audit.newest": ("最新の記録へ", "Newest entries"),
    "audit.expired": ("保存期間経過", "Expired"),
    "audit.tz_note": ("日時は {tz} で表示しています。", "Times are shown in {tz}."),
    "audit.open_entry": ("エントリ {seq} を表示", "Show entry {seq}"),
    "audit.activity_link": ("アクセス状況（グラフ）", "Activity (charts)"),
    "audit.public_key": ("公開鍵をダウンロード", "Download the public key"),
    "audit.denied": (
        "この画面を利用できるのは、監査責任者、CSIRT、総括保護管理者だけです（SEC-107(2)）。",
        "This page is for auditors, the CSIRT and the general protection manager (SEC-107(2)).",
    ),
    "audit.err.bad_date": ("日付（YYYY-MM-DD）で入力してください。", "Give a date, YYYY-MM-DD."),
    "audit.err.range": ("終了日は開始日以降にしてください。", "The end date must not be before the start date."),
    "audit.err.bad_choice": ("選択肢から選んでください。", "Choose one of the options."),
    "audit.err.record_needs_file": (
        "記録IDで探すときは、ファイルも指定してください。", "Give the file too: a record is named within its file.",
    ),
    "audit.err.user_not_found": ("その利用者はいません。", "No such user."),
    "audit.entry_not_found": (
        "そのログエントリはないか、閲覧する権限がありません。",
        "No such log entry, or it is not yours to read.",
    ),
    # --- event prefixes of the search form
    "audit.prefix.data:record:": ("個人データへのアクセス（すべて）", "Personal-data access (all)"),
    "audit.prefix.data:grant:": ("アクセス権限の付与・取消し", "Grants"),
    "audit.prefix.data:file:": ("個人情報ファイルの定義", "File definitions"),
    "audit.prefix.auth:login:": ("サインイン", "Sign-ins"),
    "audit.prefix.auth:": ("認証（サインイン・MFA・パスワード・セッション）", "Authentication (all)"),
    "audit.prefix.account:": ("アカウント・役割・課室", "Accounts, roles, departments"),
    "audit.prefix.audit:log:": ("ログ自体の閲覧・検証・書き出し", "The log itself (read, verify, export)"),
    "audit.prefix.crypto:": ("暗号鍵", "Keys"),
    "audit.prefix.system:": ("システム", "System"),
    # --- one entry (/audit/entries/{seq})
    "audit.entry.title": ("ログエントリ {seq}", "Log entry {seq}"),
    "audit.entry.summary": ("概要", "Summary"),
    "audit.entry.logged": ("記録された内容", "As logged"),
    "audit.entry.raw": (
        "正規化されたエントリ（ハッシュの対象となるバイト列）", "The canonical entry (the bytes hashed)",
    ),
    "audit.entry.leaf": ("リーフハッシュ", "Leaf hash"),
    "audit.entry.reason": ("理由", "Reason"),
    "audit.entry.target": ("対象", "Target"),
    "audit.entry.session": ("セッション", "Session"),
    "audit.entry.expired_text": (
        "保存期間を過ぎたため、このエントリの内容は削除されています。番号とリーフハッシュは残るため、"
        "ログ全体の検証は引き続きできます（ANON-12）。",
        "This entry's retention period has passed and its content was removed. Its index and leaf hash remain, "
        "so the log as a whole still verifies (ANON-12).",
    ),
    "audit.proof.title": ("包含証明（RFC 9162）", "Inclusion proof (RFC 9162)"),
    "audit.proof.intro": (
        "このエントリが、署名付きチェックポイント（木のサイズとルートハッシュ）の木に含まれていることの証明です。"
        "公開鍵さえあれば、このサーバーを信用しなくても確かめられます（SEC-107(3)、MLIT-9.5.4）。",
        "Proof that this entry is in the tree a signed checkpoint (tree size and root hash) commits to. Anyone "
        "with the public key can check it without trusting this server (SEC-107(3), MLIT-9.5.4).",
    ),
    "audit.proof.index": ("インデックス", "Index"),
    "audit.proof.size": ("木のサイズ", "Tree size"),
    "audit.proof.root": ("ルートハッシュ", "Root hash"),
    "audit.proof.path": ("証明のハッシュ列", "Proof hashes"),
    "audit.proof.empty": ("（なし：このエントリだけの木です）", "(none: the tree is this entry alone)"),
    "audit.proof.checkpoint": ("署名付きチェックポイント", "Signed checkpoint"),
    "audit.proof.unavailable": (
        "包含証明を作成できませんでした：{message}", "No inclusion proof could be made: {message}",
    ),
    "audit.check.title": ("このサーバーでの検算", "Checked on this server"),
    "audit.check.leaf": ("エントリのハッシュがリーフハッシュと一致する", "The entry hashes to the leaf hash"),
    "audit.check.path": ("証明の経路がルートハッシュに到達する", "The proof leads from the leaf to the root"),
    "audit.check.signature": (
        "チェックポイントの署名がログの公開鍵で検証できる",
        "The checkpoint's signature verifies with the log's public key",
    ),
    "audit.check.ok": ("一致", "OK"),
    "audit.check.ng": ("不一致", "FAILED"),
    "audit.check.caveat": (
        "この検算はサーバー自身によるものです。独立した確認には、下の方法で手元の端末で検証してください。",
        "This check is the server's own. For an independent check, verify on your own machine as below.",
    ),
    "audit.howto.title": ("手元での検証方法", "Verifying it yourself"),
    "audit.howto.key": (
        "ログの公開鍵をダウンロードし、別の経路（配布文書など）で知らされた値と一致することを確かめて保管します。",
        "Download the log's public key and check it against the value given to you through another channel "
        "(a distributed document, say); keep it.",
    ),
    "audit.howto.prove": (
        "次のコマンドは、チェックポイントの署名を公開鍵で検証し、エントリのハッシュから証明の経路をたどって"
        "ルートハッシュに一致することを確かめます。",
        "This command checks the checkpoint's signature with the public key, then follows the proof from the "
        "entry's hash up to the root hash.",
    ),
    "audit.howto.bundle": (
        "ログ全体（または期間）は署名付きバンドルとして書き出し、ネットワークなしで検証できます。",
        "The whole log, or a period of it, is exported as a signed bundle and verified without any network.",
    ),
    # --- verification (/audit/verify)
    "audit.verify.title": ("ログの完全性の検証", "Verifying the log"),
    "audit.verify.hint": (
        "すべてのエントリ、ハッシュ、木のノード、署名付きチェックポイントを再計算します（SEC-107(3)）。"
        "ログが大きいと時間がかかります。検証したことも記録されます。",
        "Recomputes every entry, hash, tree node and signed checkpoint (SEC-107(3)). A large log takes a while. "
        "The run is itself recorded.",
    ),
    "audit.verify.button": ("今すぐ検証", "Verify now"),
    "audit.verify.intact": (
        "ログは完全です。改ざんや欠落は見つかりませんでした。",
        "The log is intact: no tampering or gap was found.",
    ),
    "audit.verify.broken": (
        "ログに問題が見つかりました（{n}件）。最初の問題は次のとおりです。直ちにCSIRTに報告してください。",
        "The log has {n} problem(s); the first is below. Report it to the CSIRT at once.",
    ),
    "audit.verify.size": ("ログのエントリ数", "Entries in the log"),
    "audit.verify.checked": ("検証したエントリ", "Entries checked"),
    "audit.verify.expired": ("保存期間経過で内容を削除済み", "Payloads removed after retention"),
    "audit.verify.checkpoints": ("検証したチェックポイント", "Checkpoints verified"),
    "audit.verify.kind": ("種類", "Kind"),
    "audit.verify.entry": ("エントリ", "Entry"),
    "audit.verify.message": ("内容", "Details"),
    "audit.verify.all_problems": ("すべての問題", "All problems"),
    "audit.verify.back": ("監査ログに戻る", "Back to the audit log"),
    # --- activity (/audit/activity)
    "audit.activity.title": ("個人データへのアクセス状況", "Personal-data access activity"),
    "audit.activity.intro": (
        "個人データへのアクセス（参照・検索・マスク解除・登録・更新・削除・取込み）の件数を、結果別に示します"
        "（SEC-107(2)、MN-3b）。拒否や失敗が続く利用者、普段と違う量のアクセスに注意してください。",
        "Accesses to personal data (read, search, reveal, create, update, delete, import) by outcome "
        "(SEC-107(2), MN-3b). Look out for repeated denials or failures and unusual volumes.",
    ),
    "audit.activity.period": ("期間", "Period"),
    "audit.activity.days": ("過去{n}日", "Last {n} days"),
    "audit.activity.day1": ("過去24時間", "Last 24 hours"),
    "audit.activity.show": ("表示", "Show"),
    "audit.activity.bad_days": ("日数は1〜{max}の整数で指定してください。", "Give a whole number of days, 1–{max}."),
    "audit.activity.chart_day": ("日ごとのアクセス件数", "Accesses per day"),
    "audit.activity.chart_hour": ("1時間ごとのアクセス件数", "Accesses per hour"),
    "audit.activity.chart_desc": (
        "{start}から{end}まで。合計{total}件（成功{success}、拒否{denied}、失敗{failure}）。",
        "From {start} to {end}. {total} in all ({success} succeeded, {denied} denied, {failure} failed).",
    ),
    "audit.activity.bar": (
        "{label}: {total}件（成功{success}、拒否{denied}、失敗{failure}）",
        "{label}: {total} ({success} succeeded, {denied} denied, {failure} failed)",
    ),
    "audit.activity.as_table": ("グラフの数値を表で見る", "The chart's numbers as a table"),
    "audit.activity.when": ("期間", "When"),
    "audit.activity.total": ("合計", "Total"),
    "audit.activity.top": ("記録へのアクセスが多い利用者（上位10名）", "Users by records accessed (top 10)"),
    "audit.activity.user": ("利用者", "User"),
    "audit.activity.records": ("記録数", "Records"),
    "audit.activity.accesses": ("アクセス件数", "Accesses"),
    "audit.activity.denied": ("うち拒否", "Denied"),
    "audit.activity.top_none": ("期間中のアクセスはありません。", "No access in this period."),
    "audit.activity.denials": ("最近の拒否", "Recent denials"),
    "audit.activity.denials_none": ("期間中の拒否はありません。", "No denials in this period."),
    "audit.activity.search_user": ("この利用者の記録を検索", "Search this user's entries"),
}

# Event names (hogo.domain.events), in words.
AUDIT_MESSAGES.update({"event." + e.value: pair for e, pair in {
    Event.LOGIN_SUCCEEDED: ("サインイン成功", "Signed in"),
    Event.LOGIN_FAILED: ("サインイン失敗", "Sign-in failed"),
    Event.LOGIN_RATE_LIMITED: ("サインイン試行の制限", "Sign-ins rate-limited"),
    Event.ACCOUNT_LOCKED: ("アカウントのロック", "Account locked"),
    Event.LOGOUT: ("サインアウト", "Signed out"),
    Event.SESSION_EXPIRED: ("セッションの期限切れ", "Session expired"),
    Event.PASSWORD_CHANGED: ("パスワード変更", "Password changed"),
    Event.PASSWORD_CHANGE_FAILED: ("パスワード変更の失敗", "Password change failed"),
    Event.MFA_ENROLMENT_STARTED: ("多要素認証の設定開始", "MFA enrolment started"),
    Event.MFA_ENROLLED: ("多要素認証の設定", "MFA enrolled"),
    Event.MFA_RESET: ("多要素認証のリセット", "MFA reset"),
    Event.RECOVERY_CODE_USED: ("リカバリーコードの使用", "Recovery code used"),
    Event.TOKEN_CREATED: ("APIトークンの発行", "API token created"),
    Event.TOKEN_REVOKED: ("APIトークンの失効", "API token revoked"),
    Event.USER_CREATED: ("利用者の登録", "User created"),
    Event.USER_UPDATED: ("利用者の変更", "User updated"),
    Event.USER_DISABLED: ("利用者の無効化", "User disabled"),
    Event.USER_ENABLED: ("利用者の有効化", "User enabled"),
    Event.USER_UNLOCKED: ("ロックの解除", "User unlocked"),
    Event.USER_PASSWORD_RESET: ("パスワードのリセット", "Password reset"),
    Event.ROLE_GRANTED: ("役割の付与", "Role granted"),
    Event.ROLE_REVOKED: ("役割の取消し", "Role revoked"),
    Event.DEPARTMENT_CREATED: ("課室の登録", "Department created"),
    Event.DEPARTMENT_UPDATED: ("課室の変更", "Department updated"),
    Event.FILE_CREATED: ("個人情報ファイルの登録", "File defined"),
    Event.FILE_UPDATED: ("個人情報ファイルの変更", "File updated"),
    Event.GRANT_CREATED: ("アクセス権限の付与", "Grant created"),
    Event.GRANT_REVOKED: ("アクセス権限の取消し", "Grant revoked"),
    Event.GRANT_DENIED: ("アクセス権限の変更の拒否", "Grant change refused"),
    Event.RECORD_READ: ("記録の参照", "Record read"),
    Event.RECORD_REVEALED: ("マスク解除（全桁表示）", "Revealed in full"),
    Event.RECORD_SEARCHED: ("記録の検索", "Records searched"),
    Event.RECORD_CREATED: ("記録の登録", "Record created"),
    Event.RECORD_UPDATED: ("記録の更新", "Record updated"),
    Event.RECORD_DELETED: ("記録の削除", "Record deleted"),
    Event.RECORDS_IMPORTED: ("記録の取込み", "Records imported"),
    Event.KEY_CREATED: ("暗号鍵の作成", "Key created"),
    Event.KEY_ROTATED: ("暗号鍵の更新", "Key rotated"),
    Event.INSTANCE_INITIALISED: ("システムの初期化", "Instance initialised"),
    Event.LOG_READ: ("監査ログの閲覧", "Log read"),
    Event.LOG_VERIFIED: ("監査ログの検証", "Log verified"),
    Event.LOG_EXPORTED: ("監査ログの書き出し", "Log exported"),
    Event.LOG_EXPIRED: ("保存期間経過による削除", "Expired payloads removed"),
    Event.LOG_ANCHOR_FAILED: ("チェックポイント送付の失敗", "Checkpoint delivery failed"),
}.items()})

_clash = sorted(k for k in AUDIT_MESSAGES if k in MESSAGES and MESSAGES[k] != AUDIT_MESSAGES[k])
assert not _clash, f"audit texts would replace shared ones: {_clash}"
MESSAGES.update(AUDIT_MESSAGES)
