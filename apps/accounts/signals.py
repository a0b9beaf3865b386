"""Signals other apps subscribe to (in their ``AppConfig.ready()``): accounts is a
core app and never imports a domain app, so domains hear of account changes here.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent once the consent change has committed, with ``user``, ``purpose`` and
# ``granted`` (``sender`` is ConsentRecord). A receiver that fails is logged by
# the sender and does not undo the change: the consent stands as given.
consent_changed = Signal()

# Sent once a revocation of login sessions has committed (logout, log out everywhere,
# an admin's revoke, a password or role change, a disabled account...), with
# ``user_id``, ``token_ids`` (the ``AuthToken`` ids that ended) and ``reason``
# (``sender`` is AuthToken). Media ends what those sessions opened and its nodes
# refuse their grants. A receiver that fails is logged by the sender and does not
# undo the revocation.
sessions_revoked = Signal()
