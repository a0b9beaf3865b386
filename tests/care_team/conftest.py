# The psych persona set (a doctor sharing a visit conversation with an account
# that manages 本人 and a child) serves the care-relationship tests as well.
from tests.psych.conftest import care

__all__ = ["care"]
