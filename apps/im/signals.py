"""Signals other apps subscribe to (in their ``AppConfig.ready()``): IM never imports the
apps built on it, so they hear of membership changes here."""

from __future__ import annotations

from django.dispatch import Signal

# Sent once a member's removal has committed (``member_remove``), with ``conversation_id``,
# ``user_id`` and ``reason`` (``sender`` is Member). Media ends the user's sessions in the
# conversation's video room. A receiver that fails is logged by the sender and does not
# undo the removal.
member_removed = Signal()
