"""Model fields encrypted at rest (ADR 0038) with ``hub.crypto`` (AES-256-GCM, ``v1:``).

The column is ``text`` and holds ``v1:`` ciphertext only; the model attribute is the
plaintext (a string, or the JSON value). The associated data is the column's
context, ``"<app>.<model>.<field>"`` (``"im.message.body"``), so a ciphertext copied
into another column does not open there (:class:`hub.crypto.DecryptionError`).

Nothing can filter, search or join on these columns in SQL: every lookup and
transform is refused with a ``FieldError`` when the query is built. Code that
writes or reads the column in raw SQL goes through :meth:`EncryptedTextField.seal`
and :meth:`EncryptedTextField.unseal` (``apps/im/services.py``, ``apps/im/selectors.py``).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import FieldError
from django.db import models

from hub import crypto


class EncryptedTextField(models.TextField):
    """Free text encrypted at rest; the attribute is the plaintext string."""

    description = "Text encrypted at rest (AES-256-GCM)"

    def __init__(self, *args: Any, context: str = "", **kwargs: Any) -> None:
        self._explicit_context = context
        self.context = context
        super().__init__(*args, **kwargs)

    def contribute_to_class(self, cls: type[models.Model], name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only)
        if not self._explicit_context:
            self.context = f"{cls._meta.app_label}.{cls._meta.model_name}.{name}"

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self._explicit_context:
            kwargs["context"] = self._explicit_context
        return name, path, args, kwargs

    # -- plaintext <-> text of the ciphertext --------------------------------------

    def encode(self, value: Any) -> str:
        return str(value)

    def decode(self, plain: str) -> Any:
        return plain

    def seal(self, value: Any) -> str:
        """The ciphertext stored for ``value`` (for raw SQL writes)."""
        return crypto.encrypt(self.encode(value), context=self.context)

    def unseal(self, stored: str) -> Any:
        """The value of a stored ciphertext (for raw SQL reads); raises
        :class:`hub.crypto.DecryptionError` for anything that is not this column's."""
        return self.decode(crypto.decrypt(stored, context=self.context))

    # -- Django ------------------------------------------------------------------------

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return self.seal(self.to_python(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return self.unseal(value)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(f"{self.context} is encrypted at rest: it cannot be filtered or searched in SQL")

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(f"{self.context} is encrypted at rest: it cannot be filtered or searched in SQL")


class EncryptedJSONField(EncryptedTextField):
    """A JSON value (dict, list, number) encrypted at rest; the attribute is the value."""

    description = "JSON encrypted at rest (AES-256-GCM)"
    # django-stubs: the attribute is any JSON value, as for models.JSONField.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def encode(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def decode(self, plain: str) -> Any:
        return json.loads(plain)

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: models.Model) -> Any:
        return self.value_from_object(obj)


# -- migrations ----------------------------------------------------------------------------


def convert_column(schema_editor: Any, model: type[models.Model], name: str, *, encrypt: bool) -> int:
    """Encrypt (or, backwards, decrypt) the existing rows of one encrypted column in
    place, in raw SQL and in batches, for a data migration right after the column
    became an encrypted field (its type is ``text`` on every database by then).
    Idempotent: a value already in the target form is left alone. Returns the rows changed."""
    field = model._meta.get_field(name)
    assert isinstance(field, EncryptedTextField)
    qn = schema_editor.quote_name
    table, column, pk = qn(model._meta.db_table), qn(field.column), qn(model._meta.pk.column)
    changed, last = 0, None
    with schema_editor.connection.cursor() as cursor:
        while True:
            after = f"WHERE {pk} > %s " if last is not None else ""
            cursor.execute(
                f"SELECT {pk}, {column} FROM {table} {after}ORDER BY {pk} LIMIT 500",  # noqa: S608
                [last] if last is not None else [],
            )
            rows = cursor.fetchall()
            if not rows:
                return changed
            last = rows[-1][0]
            updates = []
            for row_id, stored in rows:
                if stored is None:
                    continue
                text = stored if isinstance(stored, str) else json.dumps(stored, ensure_ascii=False)
                if _opens(text, field.context) == encrypt:
                    continue  # already in the target form
                convert = crypto.encrypt if encrypt else crypto.decrypt
                updates.append((convert(text, context=field.context), row_id))
            if updates:
                cursor.executemany(f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", updates)  # noqa: S608
                changed += len(updates)


def _opens(text: str, context: str) -> bool:
    """True for this column's ciphertext (a plaintext that merely starts with ``v1:`` is not)."""
    if not crypto.is_ciphertext(text):
        return False
    try:
        crypto.decrypt(text, context=context)
    except crypto.DecryptionError:
        return False
    return True
