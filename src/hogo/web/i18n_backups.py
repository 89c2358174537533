"""Japanese and English names of the backup events (ANON-19, SEC-51, SEC-151(3)), added to
``hogo.web.i18n.MESSAGES`` when imported (by ``hogo.web.audit_routes``), so the log pages name them."""

from __future__ import annotations

from hogo.domain.events import Event
from hogo.web.i18n import MESSAGES

BACKUP_MESSAGES: dict[str, tuple[str, str]] = {"event." + e.value: pair for e, pair in {
    Event.BACKUP_CREATED: ("バックアップの作成", "Backup made"),
    Event.BACKUP_FAILED: ("バックアップの失敗", "Backup failed"),
    Event.BACKUP_VERIFIED: ("バックアップの検証", "Backup verified"),
    Event.BACKUP_RESTORED: ("バックアップからの復元", "Backup restored"),
    Event.BACKUP_DISPOSED: ("バックアップの廃棄", "Backup disposed of"),
    Event.KEYS_BACKED_UP: ("鍵のバックアップ", "Key material backed up"),
}.items()}

_clash = sorted(k for k in BACKUP_MESSAGES if k in MESSAGES and MESSAGES[k] != BACKUP_MESSAGES[k])
assert not _clash, f"backup texts would replace shared ones: {_clash}"
MESSAGES.update(BACKUP_MESSAGES)
