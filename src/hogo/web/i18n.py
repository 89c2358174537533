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

