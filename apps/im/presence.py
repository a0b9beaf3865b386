"""Who is online, for IM decisions (offline notifications). The hub keeps the
keys (hub/realtime/presence.py); this module only reads them."""

from __future__ import annotations

from hub.realtime.presence import online, touch_sync

__all__ = ["online_users", "presence_touch"]

online_users = online
presence_touch = touch_sync
