# The lifecycle is exercised on real ones: the psych personas and their care relationship.
from tests.psych.conftest import care  # noqa: F401
