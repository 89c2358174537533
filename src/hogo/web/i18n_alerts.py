"""Japanese and English text of the alert inbox (``hogo.web.alert_routes``), added to
``hogo.web.i18n.MESSAGES`` when that module is imported (by ``hogo.web.routes.install``, before the first
request). Rule titles and summaries come from ``hogo.services.alerts`` (one source for the UI, the API,
the CLI and the e-mails)."""

from __future__ import annotations

from hogo.web.i18n import MESSAGES

ALERT_MESSAGES: dict[str, tuple[str, str]] = {
    "nav.alerts": ("警告", "Alerts"),
    "alerts.title": ("警告の一覧", "Alerts"),
    "alerts.intro": (
        "アクセス記録の定期分析（大量ダウンロード、業務時間外のアクセス、拒否の繰り返しなど）で検知された警告です。"
        "内容を確認し、対応を開始したら「対応開始」、確認を終えたら対応結果を記入して「完了」にしてください"
        "（ANON-13、SEC-132）。",
        "Alerts raised by the periodic analysis of the access record (bulk downloads, access outside working "
        "hours, repeated denials, …). Acknowledge an alert when you take it up, and close it with what you found "
        "(ANON-13, SEC-132).",
    ),
    "alerts.forbidden": (
        "警告を閲覧できるのは、監査責任者、SIRT要員、総括保護管理者です。",
        "Alerts are for auditors, SIRT members and the general protection manager.",
    ),
    "alerts.filter": ("表示する警告", "Show"),
    "alerts.filter.active": ("未完了", "Not closed"),
    "alerts.filter.open": ("未対応", "Open"),
    "alerts.filter.acknowledged": ("対応中", "Acknowledged"),
    "alerts.filter.closed": ("完了", "Closed"),
    "alerts.filter.all": ("すべて", "All"),
    "alerts.none": ("該当する警告はありません。", "No alerts."),
    "alerts.severity": ("重要度", "Severity"),
    "alerts.rule": ("検知内容", "Rule"),
    "alerts.subject": ("対象", "Subject"),
    "alerts.raised": ("検知日時", "Raised"),
    "alerts.window": ("期間", "Window"),
    "alerts.entries": ("記録数", "Log entries"),
    "alerts.status": ("状態", "Status"),
    "alerts.actions": ("対応", "Action"),
    "alerts.summary": ("概要", "Summary"),
    "alerts.severity.high": ("高", "High"),
    "alerts.severity.medium": ("中", "Medium"),
    "alerts.severity.low": ("低", "Low"),
    "alerts.status.open": ("未対応", "Open"),
    "alerts.status.acknowledged": ("対応中", "Acknowledged"),
    "alerts.status.closed": ("完了", "Closed"),
    "alerts.note": ("メモ", "Note"),
    "alerts.note_hint": ("対応の内容（任意）", "What you are doing (optional)"),
    "alerts.ack": ("対応開始", "Acknowledge"),
    "alerts.resolution": ("対応結果", "Resolution"),
    "alerts.resolution_hint": ("確認した内容と結果（必須）", "What was found and done (required)"),
    "alerts.close": ("完了にする", "Close"),
    "alerts.acked_msg": ("警告 #{id} の対応を開始しました。", "Alert #{id} acknowledged."),
    "alerts.closed_msg": ("警告 #{id} を完了にしました。", "Alert #{id} closed."),
    "alerts.acked_by": ("{who} が対応中（{when}）", "Acknowledged by {who} ({when})"),
    "alerts.closed_by": ("{who} が完了（{when}）", "Closed by {who} ({when})"),
    "alerts.detail": ("詳細", "Details"),
    "alerts.alert": ("警告 #{id}", "Alert #{id}"),
    "alerts.back": ("警告の一覧へ", "Back to the alerts"),
    "alerts.events": ("根拠となる記録", "The log entries behind it"),
    "alerts.events_more": (
        "記録 {total} 件のうち最初の {shown} 件を表示しています。残りは監査ログの検索で確認できます。",
        "Showing the first {shown} of {total} entries; search the audit log for the rest.",
    ),
    "alerts.events_logged": (
        "この記録の閲覧は、監査ログに記録されます（ANON-12）。",
        "Viewing these entries is itself recorded in the audit log (ANON-12).",
    ),
    "alerts.seq": ("番号", "Seq"),
    "alerts.time": ("日時", "Time"),
    "alerts.event": ("操作", "Event"),
    "alerts.outcome": ("結果", "Outcome"),
    "alerts.actor": ("実行者", "By"),
    "alerts.file": ("ファイル", "File"),
    "alerts.records": ("記録数", "Records"),
    "alerts.from": ("接続元", "From"),
    "alerts.notified": ("通知", "Notified"),
    "alerts.not_notified": ("未通知", "Not sent"),
    "alerts.notify_failed": ("通知に失敗: {error}", "Delivery failed: {error}"),
    "alerts.run": ("今すぐ分析する", "Analyse now"),
    "alerts.run_done": (
        "分析しました（記録 {events} 件）。新しい警告 {raised} 件、更新 {updated} 件。",
        "Analysed {events} log entries: {raised} new alert(s), {updated} updated.",
    ),
    "alerts.run_busy": (
        "別の分析が実行中です。しばらくしてからもう一度お試しください。",
        "Another analysis is running; please try again shortly.",
    ),
    "alerts.config": ("分析設定", "Analysis settings"),
    "alerts.config_version": ("版 {version}", "version {version}"),
    "alerts.config_defaults": ("初期設定（未見直し）", "built-in defaults (never reviewed)"),
    "alerts.config_due": ("次回見直し期限 {due}", "review due {due}"),
    # Service errors of the alert inbox and the analysis.
    "err.own_alert": (
        "自分自身の操作に関する警告は、他の担当者が対応してください（SEC-19）。",
        "An alert about your own actions must be handled by someone else (SEC-19).",
    ),
    "err.alert_not_open": ("この警告は既に対応中または完了です。", "This alert is no longer open."),
    "err.alert_closed": ("この警告は既に完了しています。", "This alert is already closed."),
    "err.alert_not_found": ("その警告はありません。", "No such alert."),
    "err.own_change": (
        "自分が行った設定変更は、他の担当者が見直してください（SEC-19）。",
        "Settings you changed must be reviewed by someone else (SEC-19).",
    ),
}

_clash = sorted(k for k in ALERT_MESSAGES if k in MESSAGES and MESSAGES[k] != ALERT_MESSAGES[k])
assert not _clash, f"alert texts would replace shared ones: {_clash}"
MESSAGES.update(ALERT_MESSAGES)
