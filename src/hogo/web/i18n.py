"""Japanese (default) and English text for the web UI: a dictionary, no framework.

Service errors carry English messages and stable codes; the UI shows a Japanese text for the codes
it knows and falls back to the service's own message otherwise.
"""

from __future__ import annotations

import re

from hogo.domain.roles import Role
from hogo.errors import HogoError, ValidationFailed

LANGS = ("ja", "en")
DEFAULT_LANG = "ja"

MESSAGES: dict[str, tuple[str, str]] = {
    # --- layout
    "app.name": ("hogo 保護", "hogo"),
    "app.tagline": ("個人情報の安全管理", "Personal data, kept safe"),
    "nav.home": ("ホーム", "Home"),
    "nav.users": ("利用者管理", "Users"),
    "nav.departments": ("課室", "Departments"),
    "nav.logout": ("サインアウト", "Sign out"),
    "nav.password": ("パスワード変更", "Change password"),
    "nav.main": ("メインメニュー", "Main menu"),
    "lang.switch": ("言語", "Language"),
    "skip": ("本文へ移動", "Skip to content"),
    # --- login
    "login.title": ("サインイン", "Sign in"),
    "login.username": ("ユーザー名", "User name"),
    "login.password": ("パスワード", "Password"),
    "login.totp": ("ワンタイムコード（認証アプリの6桁）", "One-time code (6 digits from your authenticator app)"),
    "login.totp_hint": (
        "多要素認証を設定済みの場合は必須です。",
        "Required once multi-factor authentication is set up.",
    ),
    "login.recovery": (
        "認証アプリが使えない場合（リカバリーコード）",
        "Cannot use your authenticator app? (recovery code)",
    ),
    "login.recovery_code": ("リカバリーコード", "Recovery code"),
    "login.submit": ("サインイン", "Sign in"),
    "login.failed": (
        "サインインできませんでした。ユーザー名、パスワード、ワンタイムコードを確認してください。"
        "アカウントがロックされている可能性もあります。",
        "Sign-in failed: check the user name, password and one-time code. The account may also be locked.",
    ),
    "login.mfa_required": (
        "認証アプリに表示されている6桁のワンタイムコードを入力し、パスワードをもう一度入力してください。",
        "Enter the 6-digit one-time code from your authenticator app, and your password again.",
    ),
    "login.rate_limited": (
        "このアドレスからのサインイン失敗が多すぎます。しばらくしてからもう一度お試しください。",
        "Too many failed sign-ins from this address. Please try again later.",
    ),
    "login.expired": (
        "セッションの有効期限が切れました。もう一度サインインしてください。",
        "Your session has expired. Please sign in again.",
    ),
    "login.idle": (
        "一定時間操作がなかったため、セッションの有効期限が切れました。もう一度サインインしてください。",
        "Your session expired after a period of inactivity. Please sign in again.",
    ),
    "login.ended": (
        "セッションは終了しました。もう一度サインインしてください。",
        "Your session has ended. Please sign in again.",
    ),
    "login.logged_out": ("サインアウトしました。", "You have signed out."),
    "login.remote_mfa": (
        "信頼済みネットワークの外からのアクセスには多要素認証が必要です。"
        "まだ設定していない場合は、組織内のネットワークから設定してください。",
        "Access from outside the trusted networks needs multi-factor authentication. "
        "If you have not set it up yet, do so from inside the organisation's network.",
    ),
    # --- password change
    "pw.title": ("パスワードの変更", "Change your password"),
    "pw.forced": (
        "初回サインイン、またはパスワードのリセット後です。続けるには新しいパスワードを設定してください。",
        "This is your first sign-in or your password was reset: set a new password to continue.",
    ),
    "pw.current": ("現在のパスワード", "Current password"),
    "pw.new": ("新しいパスワード", "New password"),
    "pw.confirm": ("新しいパスワード（確認）", "New password (again)"),
    "pw.policy": (
        "{min}文字以上。ユーザー名や、よく使われるパスワードは使えません。長い文章（パスフレーズ）がおすすめです。",
        "At least {min} characters; not your user name nor a commonly used password. A long phrase works well.",
    ),
    "pw.submit": ("変更する", "Change password"),
    "pw.mismatch": ("確認用のパスワードが一致しません。", "The two new passwords differ."),
    "pw.wrong_current": ("現在のパスワードが正しくありません。", "The current password is wrong."),
    "pw.problems": ("新しいパスワードは次の条件を満たしていません:", "The new password does not meet these rules:"),
    "pw.changed": ("パスワードを変更しました。", "Your password has been changed."),
    # --- MFA
    "mfa.title": ("多要素認証の設定", "Set up multi-factor authentication"),
    "mfa.intro": (
        "認証アプリ（Google Authenticator、Microsoft Authenticator など）で次のQRコードを読み取ってください。",
        "Scan this QR code with an authenticator app (Google Authenticator, Microsoft Authenticator, …).",
    ),
    "mfa.qr_alt": ("認証アプリ登録用のQRコード", "QR code for your authenticator app"),
    "mfa.manual": ("QRコードを読み取れない場合は、次のキーを手入力してください", "Cannot scan? Enter this key by hand"),
    "mfa.account": ("アカウント", "Account"),
    "mfa.issuer": ("発行者", "Issuer"),
    "mfa.secret": ("キー", "Key"),
    "mfa.code": ("アプリに表示された6桁のコード", "The 6-digit code the app shows"),
    "mfa.submit": ("確認して有効にする", "Verify and turn on"),
    "mfa.invalid": (
        "コードが一致しません。端末の時刻が正しいか確認して、もう一度入力してください。",
        "The code does not match. Check the device's clock and try again.",
    ),
    "mfa.not_started": (
        "設定の有効期限が切れました。ページを読み込み直して、新しいQRコードで設定してください。",
        "The setup has expired: reload the page and scan the new QR code.",
    ),
    "mfa.already": ("多要素認証は設定済みです。", "Multi-factor authentication is already set up."),
    "mfa.done_title": ("リカバリーコード", "Recovery codes"),
    "mfa.done": ("多要素認証を有効にしました。", "Multi-factor authentication is now on."),
    "mfa.codes_once": (
        "認証アプリが使えなくなったときのためのリカバリーコードです。各コードは1回だけ使えます。"
        "この画面は一度しか表示されません。安全な場所に保管してください。",
        "Use these recovery codes if you lose your authenticator app. Each works once. "
        "They are shown only now: store them somewhere safe.",
    ),
    "mfa.stored": ("保管しました", "I have stored them"),
    # --- home
    "home.title": ("ホーム", "Home"),
    "home.you": ("サインイン中の利用者", "Signed in as"),
    "home.display_name": ("氏名", "Name"),
    "home.username": ("ユーザー名", "User name"),
    "home.department": ("所属", "Department"),
    "home.roles": ("役割", "Roles"),
    "home.no_roles": ("なし", "none"),
    "home.session": ("セッション", "Session"),
    "home.expires": ("有効期限", "Expires at"),
    "home.idle": ("無操作タイムアウト", "Idle timeout"),
    "home.idle_value": (
        "{n}分間操作がないと自動的にサインアウトします",
        "Signed out after {n} minutes without activity",
    ),
    "home.mfa": ("多要素認証", "Multi-factor authentication"),
    "home.valid_until": ("アカウント有効期限", "Account valid until"),
    "home.sign_ins": ("最近のサインイン", "Recent sign-ins"),
    "home.sign_ins_none": ("記録がありません。", "None recorded."),
    "home.when": ("日時", "When"),
    "home.outcome": ("結果", "Outcome"),
    "home.address": ("接続元", "From"),
    "home.check": (
        "身に覚えのないサインインがあれば、システム管理者に連絡してください。",
        "If you see a sign-in you do not recognise, tell your system administrator.",
    ),
    "outcome.success": ("成功", "Succeeded"),
    "outcome.failure": ("失敗", "Failed"),
    "outcome.denied": ("拒否", "Denied"),
    "yes": ("はい", "Yes"),
    "no": ("いいえ", "No"),
    "none": ("—", "—"),
    "on": ("有効", "On"),
    "off": ("未設定", "Off"),
    # --- admin: users
    "users.title": ("利用者管理", "Users"),
    "users.list": ("利用者一覧", "All users"),
    "users.username": ("ユーザー名", "User name"),
    "users.display_name": ("氏名", "Name"),
    "users.department": ("所属", "Department"),
    "users.state": ("状態", "State"),
    "users.roles": ("役割", "Roles"),
    "users.mfa": ("多要素認証", "MFA"),
    "users.last_login": ("最終サインイン", "Last sign-in"),
    "users.valid_until": ("有効期限", "Valid until"),
    "users.actions": ("操作", "Actions"),
    "users.never": ("なし", "never"),
    "users.open_ended": ("無期限", "open-ended"),
    "users.must_change": ("パスワード変更待ち", "must change password"),
    "users.create": ("利用者の登録", "Create a user"),
    "users.create_submit": ("登録する", "Create"),
    "users.roles_hint": (
        "複数選択できます（Ctrl / ⌘ キー）。課室単位の役割は所属課室に付与されます。",
        "Select one or more (Ctrl / ⌘). Department roles apply to the user's department.",
    ),
    "users.valid_until_hint": (
        "その日の終わりまで有効です（委託先は必須）。",
        "Valid through the end of that day (required for contractors).",
    ),
    "users.no_department": ("（なし）", "(none)"),
    "users.created": ("利用者 {name} を登録しました。", "User {name} has been created."),
    "users.otp": ("一時パスワード", "One-time password"),
    "users.otp_once": (
        "この一時パスワードは今回だけ表示されます。本人に安全な方法で伝えてください。"
        "初回サインイン時に変更が求められます。",
        "This one-time password is shown only now. Give it to the user by a safe channel; "
        "they must change it at first sign-in.",
    ),
    "users.disable": ("無効化", "Disable"),
    "users.enable": ("有効化", "Enable"),
    "users.unlock": ("ロック解除", "Unlock"),
    "users.reset_password": ("パスワードリセット", "Reset password"),
    "users.reset_mfa": ("多要素認証リセット", "Reset MFA"),
    "users.grant": ("役割を付与", "Grant role"),
    "users.revoke": ("役割 {role} を外す", "Revoke role {role}"),
    "users.role_dept": ("課室（任意）", "Department (optional)"),
    "users.confirm_disable": (
        "{name} を無効化します。すべてのセッションが直ちに終了します。よろしいですか？",
        "Disable {name}? Every session ends at once.",
    ),
    "users.confirm_reset_password": (
        "{name} のパスワードをリセットします。よろしいですか？",
        "Reset the password of {name}?",
    ),
    "users.confirm_reset_mfa": (
        "{name} の多要素認証をリセットします。よろしいですか？",
        "Reset multi-factor authentication of {name}?",
    ),
    "users.done.disable": ("{name} を無効化しました。", "{name} has been disabled."),
    "users.done.enable": ("{name} を有効化しました。", "{name} has been enabled."),
    "users.done.unlock": ("{name} のロックを解除しました。", "{name} has been unlocked."),
    "users.done.reset-password": ("{name} のパスワードをリセットしました。", "The password of {name} has been reset."),
    "users.done.reset-mfa": (
        "{name} の多要素認証をリセットしました。次回サインイン時に再設定が必要です。",
        "MFA of {name} has been reset; they set it up again at next sign-in.",
    ),
    "users.done.grant-role": ("{name} に役割を付与しました。", "The role has been granted to {name}."),
    "users.done.revoke-role": ("{name} から役割を外しました。", "The role has been revoked from {name}."),
    "state.active": ("有効", "Active"),
    "state.disabled": ("無効", "Disabled"),
    "state.expired": ("期限切れ", "Expired"),
    "state.not_yet_valid": ("開始前", "Not yet valid"),
    "state.locked": ("ロック中", "Locked"),
    # --- admin: departments
    "depts.title": ("課室", "Departments"),
    "depts.code": ("課室コード", "Code"),
    "depts.name": ("課室名", "Name"),
    "depts.parent": ("上位課室", "Parent"),
    "depts.members": ("所属人数", "Members"),
    "depts.none": ("課室はまだありません。", "No departments yet."),
    "depts.create": ("課室の登録", "Create a department"),
    "depts.create_submit": ("登録する", "Create"),
    "depts.code_hint": ("半角英数字、_ または -（例: JINJI）", "Letters, digits, _ or - (e.g. JINJI)"),
    "depts.created": ("課室 {code} を登録しました。", "Department {code} has been created."),
    # --- errors
    "error.title": ("エラー", "Error"),
    "error.forbidden_title": ("アクセスできません", "Access denied"),
    "error.forbidden": ("このページを利用する権限がありません。", "You are not allowed to use this page."),
    "error.csrf": (
        "フォームの有効期限が切れたか、不正な送信です。ページを読み込み直してやり直してください。"
        "何も変更されていません。",
        "The form has expired or the request did not come from this site. Reload the page and try again. "
        "Nothing was changed.",
    ),
    "error.cookie_insecure": (
        "このサーバーのクッキーは HTTPS 専用（Secure）のため、http:// ではサインインできません。"
        "https:// で開いてください（管理者向け: TLS を使うか、設定 cookie_secure を確認してください）。",
        "This server's cookies are HTTPS-only (Secure), so signing in over http:// cannot work. "
        "Open it with https:// (administrators: use TLS, or review the cookie_secure setting).",
    ),
    "error.not_found": ("ページが見つかりません。", "Page not found."),
    "error.back_home": ("ホームへ戻る", "Back to home"),
    "error.generic": ("処理できませんでした: {message}", "Could not do that: {message}"),
    "err.self_approval_forbidden": (
        "自分自身のアカウントにはこの操作はできません。別の管理者が行う必要があります（SEC-19）。",
        "You cannot do this to your own account; another administrator must do it (SEC-19).",
    ),
    "err.user_exists": ("このユーザー名は既に使われています。", "That user name is already taken."),
    "err.department_exists": ("この課室コードは既に使われています。", "That department code is already taken."),
    "err.department_not_found": ("その課室はありません。", "No such department."),
    "err.user_not_found": ("その利用者はいません。", "No such user."),
    "err.last_admin": (
        "最後の有効なシステム管理者です。先に別の管理者を登録してください。",
        "This is the last active administrator; create another first.",
    ),
    "err.already_disabled": ("既に無効化されています。", "The account is already disabled."),
    "err.not_disabled": ("無効化されていません。", "The account is not disabled."),
    "err.role_exists": ("その役割は既に付与されています。", "The user already holds this role."),
    "err.role_not_held": ("その役割は付与されていません。", "The user does not hold this role."),
    "err.contractor_end_date": (
        "委託先のアカウントには有効期限が必要です（SEC-129）。",
        "Contractor accounts need an end date (SEC-129).",
    ),
    "err.roles_required": ("役割を1つ以上選んでください。", "Choose at least one role."),
    "err.role_needs_department": (
        "この役割は課室単位です。所属課室を選んでください。",
        "This role is held within a department: choose a department.",
    ),
    "err.bad_date": ("日付の形式が正しくありません（YYYY-MM-DD）。", "Not a date (YYYY-MM-DD)."),
    "err.valid_until_past": ("有効期限は今日以降にしてください。", "The end date must be in the future."),
    "err.required": ("入力してください。", "This field is required."),
    # --- personal-data files (issue 3)
    "nav.files": ("個人情報ファイル", "Personal-data files"),
    "files.title": ("利用できる個人情報ファイル", "Personal-data files you may use"),
    "files.intro": (
        "あなたが利用できる、または台帳を閲覧できる個人情報ファイルです。"
        "記録の利用には、ファイルごとのアクセス権限と利用目的の宣言が必要です。",
        "The personal-data files you may use or whose ledger entry you may read. "
        "Using records takes a grant on the file and a declared purpose.",
    ),
    "files.none": (
        "利用できる個人情報ファイルはありません。必要な場合は、ファイルの保護管理者に権限を申請してください。",
        "There is no file you may use. Ask the file's protection manager for a grant if you need one.",
    ),
    "files.code": ("コード", "Code"),
    "files.name": ("名称", "Name"),
    "files.kind": ("種別", "Kind"),
    "files.classification": ("格付", "Classification"),
    "files.restrictions": ("取扱制限", "Handling restrictions"),
    "files.records": ("記録数", "Records"),
    "files.department": ("所管課室", "Department"),
    "files.responsible": ("責任者", "Responsible"),
    "files.version": ("版", "Version"),
    "files.review_link": ("アクセス権の見直し", "Access review"),
    "files.no_restrictions": ("なし", "none"),
    "files.not_found": (
        "そのファイルはないか、閲覧する権限がありません。",
        "No such file, or you may not see it.",
    ),
    "files.ledger": ("ファイル台帳（記録事項）", "File ledger entry"),
    "files.ledger_hint": (
        "特定個人情報ファイルの台帳記録事項です（MN-3c）。個人番号そのものは含みません。",
        "The items of the file ledger (MN-3c). It never contains a My Number.",
    ),
    "files.purposes": ("利用目的", "Purposes"),
    "files.task": ("個人番号利用事務", "Administrative task"),
    "files.legal_basis": ("根拠法令", "Legal basis"),
    "files.collection": ("収集方法", "Collection method"),
    "files.scope": ("本人の範囲", "Scope of individuals"),
    "files.retention": ("保存期間", "Retention"),
    "files.retention_value": ("{days}日（約{years}年）", "{days} days (about {years} years)"),
    "files.description": ("説明", "Description"),
    "files.updated": ("最終更新", "Last updated"),
    "files.fields": ("項目", "Fields"),
    "files.field_label": ("項目名", "Label"),
    "files.field_name": ("識別子", "Name"),
    "files.field_type": ("型", "Type"),
    "files.field_sensitivity": ("区分", "Sensitivity"),
    "files.field_required": ("必須", "Required"),
    "files.field_indexed": ("検索可", "Searchable"),
    "files.grants_link": ("アクセス権限", "Grants"),
    "files.breadcrumb": ("パンくずリスト", "Breadcrumb"),
    "files.masked_note": (
        "個人番号などの個人識別符号はマスクして表示します（MN-6a）。",
        "My Numbers and other identification codes are shown masked (MN-6a).",
    ),
    # record lookup
    "lookup.title": ("記録の検索・参照", "Find and open records"),
    "lookup.hint": (
        "利用目的を選び、検索可能な項目の値で完全一致検索します。検索値はURLに含まれません。"
        "検索・参照はすべて記録されます（MN-3b）。",
        "Choose the purpose, then search by exact value on a searchable field. Values never go into a URL. "
        "Every search and every read is recorded (MN-3b).",
    ),
    "lookup.purpose": ("利用目的", "Purpose"),
    "lookup.purpose_choose": ("（利用目的を選んでください）", "(choose the purpose)"),
    "lookup.search": ("検索", "Search"),
    "lookup.open_title": ("記録IDで開く", "Open by record ID"),
    "lookup.record_id": ("記録ID", "Record ID"),
    "lookup.open": ("開く", "Open"),
    "lookup.found": ("{n}件の記録が見つかりました。", "{n} record(s) found."),
    "lookup.none": ("該当する記録はありません。", "No matching record."),
    "lookup.no_grant_hint": (
        "権限のない記録は検索結果に表示されません。",
        "Records outside your grants are not listed.",
    ),
    # record page
    "record.title": ("記録 {id}", "Record {id}"),
    "record.file": ("ファイル", "File"),
    "record.purpose": ("利用目的", "Purpose"),
    "record.segment": ("区分", "Segment"),
    "record.revision": ("版", "Revision"),
    "record.updated": ("最終更新", "Last updated"),
    "record.values": ("記録の内容", "Values"),
    "record.field": ("項目", "Field"),
    "record.value": ("値", "Value"),
    "record.reveal": ("表示", "Reveal"),
    "record.reveal_label": ("{label}を表示", "Reveal {label}"),
    "record.revealed": ("表示中（記録済み）", "Shown (recorded)"),
    "record.masked": ("マスク表示", "Masked"),
    "record.reveal_note": (
        "「表示」を押すと全桁を表示します。表示は権限（reveal）がある場合に限られ、"
        "操作は記録されます（MN-6a, MN-3b）。",
        "“Reveal” shows every digit, only with a reveal grant; each reveal is recorded (MN-6a, MN-3b).",
    ),
    "record.back": ("ファイルに戻る", "Back to the file"),
    "record.back_record": ("記録に戻る", "Back to the record"),
    "record.refused_title": ("利用できません", "Not allowed"),
    "record.refused_hint": (
        "この操作は記録されました。必要な場合は、ファイルの保護管理者に権限を申請してください。",
        "This attempt has been recorded. Ask the file's protection manager for a grant if you need one.",
    ),
    "record.get_hint": (
        "記録は、利用目的を選んでファイルのページから開いてください。",
        "Open records from the file's page, after choosing the purpose.",
    ),
    # classification (SEC-5, table 1)
    "cls.label": ("格付", "Classification"),
    "cls.confidential": ("要機密", "Confidential"),
    "cls.integrity": ("要保全", "Integrity-critical"),
    "cls.availability": ("要安定", "Availability-critical"),
    "cls.protect": ("要保護", "Protected"),
    "restriction.no_copy": ("複製禁止", "No copying"),
    "restriction.no_take_out": ("持出禁止", "No taking out"),
    "restriction.no_distribution": ("配付禁止", "No distribution"),
    "restriction.encryption_required": ("暗号化必須", "Encryption required"),
    "restriction.destroy_after_reading": ("読後廃棄", "Destroy after reading"),
    "kind.personal_information": ("個人情報ファイル", "Personal information file"),
    "kind.specific_personal_information": ("特定個人情報ファイル", "Specific personal information file (My Number)"),
    "kind.anonymised": ("匿名加工情報ファイル", "Anonymised information file"),
    "kind.pseudonymised": ("仮名加工情報ファイル", "Pseudonymised information file"),
    "ftype.text": ("文字列", "Text"),
    "ftype.name": ("氏名", "Name"),
    "ftype.number": ("数値", "Number"),
    "ftype.date": ("日付", "Date"),
    "ftype.my_number": ("個人番号", "My Number"),
    "ftype.corporate_number": ("法人番号", "Corporate number"),
    "ftype.email": ("メールアドレス", "E-mail"),
    "ftype.phone": ("電話番号", "Phone"),
    "ftype.postal_code": ("郵便番号", "Postal code"),
    "ftype.address": ("住所", "Address"),
    "sens.direct_identifier": ("個人を直接識別する情報", "Direct identifier"),
    "sens.individual_identification_code": ("個人識別符号", "Individual identification code"),
    "sens.special_care": ("要配慮個人情報", "Special-care information"),
    "sens.quasi_identifier": ("準識別子", "Quasi-identifier"),
    "sens.other": ("その他", "Other"),
    "action.read": ("参照", "Read"),
    "action.create": ("登録", "Create"),
    "action.update": ("更新", "Update"),
    "action.delete": ("削除", "Delete"),
    "action.reveal": ("マスク解除", "Reveal"),
    "action.export": ("書き出し", "Export"),
    "action.manage": ("権限管理", "Manage grants"),
    # grants
    "grants.title": ("アクセス権限", "Grants"),
    "grants.intro": (
        "このファイルの記録を利用できる人と範囲です。変更できるのは、所管課室の保護管理者と"
        "権限管理（manage）を持つ人だけで、自分自身には付与できません（SEC-130, SEC-19）。",
        "Who may use this file's records, and how far. Only the department's protection manager and holders "
        "of “manage” change them, never for themselves (SEC-130, SEC-19).",
    ),
    "grants.list": ("現在の権限", "Current grants"),
    "grants.none": ("このファイルに有効な権限はありません。", "No grant on this file."),
    "grants.grantee": ("付与先", "Grantee"),
    "grants.actions": ("操作", "Actions"),
    "grants.purposes": ("利用目的", "Purposes"),
    "grants.fields": ("項目", "Fields"),
    "grants.segments": ("対象記録（区分）", "Records (segments)"),
    "grants.valid_until": ("有効期限", "Valid until"),
    "grants.granted": ("付与", "Granted"),
    "grants.last_used": ("最終利用", "Last used"),
    "grants.never_used": ("未使用", "never"),
    "grants.all_fields": ("すべての項目", "every field"),
    "grants.all_records": ("すべての記録", "every record"),
    "grants.open_ended": ("無期限", "open-ended"),
    "grants.note": ("備考", "Note"),
    "grants.user": ("利用者 {name}", "user {name}"),
    "grants.role": ("役割 {role}", "role {role}"),
    "grants.revoke": ("取り消す", "Revoke"),
    "grants.confirm_revoke": ("{grantee} の権限を取り消します。よろしいですか？", "Revoke the grant of {grantee}?"),
    "grants.revoked": ("権限を取り消しました。", "The grant has been revoked."),
    "grants.created": ("{grantee} に権限を付与しました。", "The grant to {grantee} has been created."),
    "grants.add": ("権限の付与", "Add a grant"),
    "grants.to_user": ("利用者（ユーザー名）", "User (user name)"),
    "grants.to_role": ("または役割", "or a role"),
    "grants.to_role_none": ("（役割を選ばない）", "(no role)"),
    "grants.role_dept": ("役割の課室（任意）", "Role's department (optional)"),
    "grants.role_dept_any": ("（すべての課室）", "(any department)"),
    "grants.grantee_hint": (
        "利用者か役割のどちらか一方を指定します。",
        "Give either a user or a role.",
    ),
    "grants.actions_hint": (
        "「マスク解除」は個人番号などの個人識別符号を全桁表示する権限（MN-6a）、"
        "「権限管理」はこのファイルの権限を変更する権限です（SEC-130）。",
        "“Reveal” shows My Numbers and other identification codes in full (MN-6a); “Manage grants” changes "
        "this file's grants (SEC-130).",
    ),
    "grants.fields_hint": (
        "選ばなければすべての項目が対象です。必要な項目だけに絞ってください（最小権限、SEC-131）。",
        "None selected means every field. Keep to the fields needed (least privilege, SEC-131).",
    ),
    "grants.segments_hint": (
        "区分の値をカンマ区切りで（例: KYUYO, JINJI）。$own_department は利用者自身の課室。空欄ならすべての記録。",
        "Segment values, comma-separated (e.g. KYUYO, JINJI). $own_department means the user's own "
        "department(s). Empty: every record.",
    ),
    "grants.valid_until_hint": ("その日の終わりまで有効です。", "Valid through the end of that day."),
    "grants.submit": ("付与する", "Grant"),
    "grants.self": (
        "自分自身（または自分が持つ役割）には権限を付与できません。別の保護管理者が行う必要があります（SEC-19）。",
        "You cannot grant rights to yourself (nor to a role you hold); another manager must do it (SEC-19).",
    ),
    "grants.review_link": ("このファイルの見直し", "Review this file"),
    # access review
    "review.title": ("アクセス権の見直し", "Access review"),
    "review.intro": (
        "不要になった権限がないか定期的に確認します（SEC-131）。所見のある権限は、"
        "必要性を確認し、不要なら取り消してください。",
        "The periodic check for rights no longer needed (SEC-131). Check each grant with findings and revoke it "
        "if it is not needed.",
    ),
    "review.file": ("ファイル", "File"),
    "review.all_files": ("（すべてのファイル）", "(every file)"),
    "review.unused_days": ("未使用とみなす日数", "Unused after (days)"),
    "review.run": ("表示", "Show"),
    "review.findings": ("所見", "Findings"),
    "review.ok": ("問題なし", "OK"),
    "review.summary": (
        "{total}件の権限のうち、{flagged}件に確認が必要な所見があります。",
        "{flagged} of {total} grants have findings to check.",
    ),
    "review.none": ("対象の権限はありません。", "No grants to review."),
    "review.bad_days": ("日数は1〜3650の整数で入力してください。", "Give a whole number of days, 1–3650."),
    "review.manage": ("権限の管理へ", "Manage grants"),
    "finding.unused": ("未使用（{days}日以上）", "Unused ({days}+ days)"),
    "finding.never_used": ("一度も使われていない", "Never used"),
    "finding.expired": ("期限切れ", "Expired"),
    "finding.not_yet_valid": ("開始前", "Not yet valid"),
    "finding.holder_disabled": ("無効化された利用者", "Holder disabled"),
    "finding.holder_expired": ("有効期限切れの利用者", "Holder's account expired"),
    # refusals from the guard and the grant service
    "err.denied_purpose_not_of_file": (
        "選んだ利用目的は、このファイルの利用目的ではありません。",
        "The chosen purpose is not a purpose of this file.",
    ),
    "err.denied_no_grant": (
        "このファイルに対するアクセス権限がありません。",
        "You hold no grant on this file.",
    ),
    "err.denied_grant_not_in_force": (
        "このファイルに対する権限は、有効期間外です。",
        "Your grants on this file have expired or are not yet valid.",
    ),
    "err.denied_action_not_granted": (
        "この操作は、あなたの権限に含まれていないため許可されていません。",
        "This action is not granted to you.",
    ),
    "err.denied_purpose_not_granted": (
        "選んだ利用目的が許可されていません。この利用目的での権限がありません。",
        "Your grants do not allow this for the chosen purpose.",
    ),
    "err.denied_record_out_of_scope": (
        "この記録は、あなたの権限の対象範囲外です。",
        "This record is outside the records your grants cover.",
    ),
    "err.denied_field_not_granted": (
        "この項目を利用する権限がありません。",
        "You are not granted this field.",
    ),
    "err.not_file_manager": (
        "このファイルのアクセス権限を扱えるのは、所管課室の保護管理者と権限管理（manage）を持つ人だけです。",
        "Only the department's protection manager and holders of “manage” on this file handle its grants.",
    ),
    "err.file_not_found": ("そのファイルはありません。", "No such file."),
    "err.record_not_found": ("その記録はありません。", "No such record."),
    "err.grant_not_found": ("その権限はありません。", "No such grant."),
}

# Password-policy phrases from hogo.domain.passwords, in Japanese.
_PW_PROBLEMS_JA: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"must be at least (\d+) characters"), "{0}文字以上にしてください"),
    (re.compile(r"must be at most (\d+) characters"), "{0}文字以下にしてください"),
    (re.compile(r"must not contain control characters"), "制御文字は使えません"),
    (re.compile(r"must not be or contain the user name"), "ユーザー名を含めないでください"),
    (re.compile(r"is in the list of commonly used passwords"), "よく使われるパスワードの一覧に含まれています"),
    (re.compile(r"must not repeat one or two characters"), "1〜2種類の文字の繰り返しだけにしないでください"),
    (re.compile(r"must differ from the current password"), "現在のパスワードと異なるものにしてください"),
]

# Input-rule messages from hogo.domain.text (via the services), in Japanese.
_VALIDATION_JA: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"user name must be 2–63 characters.*"),
     "ユーザー名は2〜63文字で、半角英小文字・数字・「.」「_」「-」が使えます（先頭は英数字）。"),
    (re.compile(r"department code must be 1–32 characters.*"),
     "課室コードは1〜32文字の半角英数字・「_」「-」で入力してください。"),
    (re.compile(r".* must be written in half-width characters \(did you mean '(.*)'\?\)"),
     "半角文字で入力してください（「{0}」ではありませんか？）。"),
    (re.compile(r".* must not be empty"), "入力してください。"),
    (re.compile(r".* must not contain control characters"), "制御文字は使えません。"),
    (re.compile(r".* must be at most (\d+) characters"), "{0}文字以内で入力してください。"),
    (re.compile(r"the end of the validity period must be after its start"), "有効期限は開始日より後にしてください。"),
    # Grants, searches and records (hogo.services.grants, hogo.services.guard).
    (re.compile(r"grant to a user or to a role \(one of them\)"),
     "付与先として、利用者か役割のどちらか一方を指定してください。"),
    (re.compile(r"give at least one action"), "操作を1つ以上選んでください。"),
    (re.compile(r"give at least one purpose"), "利用目的を1つ以上選んでください。"),
    (re.compile(r"'(.*)' is not a purpose of this file .*"), "「{0}」はこのファイルの利用目的ではありません。"),
    (re.compile(r"contractor grants need an end date"), "委託先への付与には有効期限が必要です（SEC-129）。"),
    (re.compile(r"the account '(.*)' is (disabled|expired)"),
     "アカウント {0} は無効化されているか、有効期限が切れています。"),
    (re.compile(r"no field '(.*)' in this file"), "このファイルに項目 {0} はありません。"),
    (re.compile(r"this file has no segment_field.*"), "このファイルには区分がないため、対象記録を限定できません。"),
    (re.compile(r"the end must be after the start"), "有効期限は開始日より後にしてください。"),
    (re.compile(r"give at least one FIELD=VALUE condition"), "検索する値を1つ以上入力してください。"),
    (re.compile(r"declare the purpose of this access.*"), "利用目的を選んでください（SEC-45）。"),
    (re.compile(r"field '(.*)' is not indexed.*"), "項目 {0} では検索できません。"),
    (re.compile(r"field '(.*)' is not masked.*"), "項目 {0} はマスクされていません。"),
    (re.compile(r"you cannot read field\(s\) (.*)"), "項目 {0} を参照する権限がありません。"),
    (re.compile(r"\w+: 個人番号 \(My Number\) check digit does not match"),
     "個人番号のチェックデジットが一致しません。"),
    (re.compile(r"\w+: 個人番号 \(My Number\) must have 12 digits \(got (\d+)\)"),
     "個人番号は12桁です（入力は{0}桁）。"),
    (re.compile(r"\w+: 個人番号 \(My Number\) must consist of digits"), "個人番号は数字で入力してください。"),
    (re.compile(r"\w+: must be a date YYYY-MM-DD"), "日付（YYYY-MM-DD）で入力してください。"),
]

_FIELD_LABELS: dict[str, str] = {
    "username": "users.username",
    "display_name": "users.display_name",
    "department": "users.department",
    "roles": "users.roles",
    "valid_until": "users.valid_until",
    "code": "depts.code",
    "name": "depts.name",
    "parent": "depts.parent",
}


def pick_lang(value: str | None) -> str:
    return value if value in LANGS else DEFAULT_LANG


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = pick_lang(lang)
        self._i = 0 if self.lang == "ja" else 1

    def __call__(self, key: str, **kw: object) -> str:
        pair = MESSAGES.get(key)
        if pair is None:
            return key
        text = pair[self._i]
        return text.format(**kw) if kw else text

    def role(self, role: Role | str) -> str:
        r = Role(role)
        return r.label_ja if self.lang == "ja" else r.label_en

    def password_problem(self, problem: str) -> str:
        if self.lang != "ja":
            return problem
        for pattern, text in _PW_PROBLEMS_JA:
            m = pattern.fullmatch(problem)
            if m:
                return text.format(*m.groups())
        return problem

    def field(self, name: str | None) -> str:
        key = _FIELD_LABELS.get(name or "")
        return self(key) if key else (name or "")

    def error(self, exc: HogoError) -> str:
        """A message for a service error: Japanese where the code is known, else the service's text."""
        key = "err." + exc.code
        if key in MESSAGES:
            return self(key)
        if isinstance(exc, ValidationFailed):
            msg = exc.message
            if "contractor accounts need an end date" in msg:
                return self("err.contractor_end_date")
            if "give at least one role" in msg:
                return self("err.roles_required")
            if "is held within a department" in msg:
                return self("err.role_needs_department")
            if self.lang == "ja":
                for pattern, text in _VALIDATION_JA:
                    m = pattern.fullmatch(msg)
                    if m:
                        return text.format(*m.groups())
        return exc.message

