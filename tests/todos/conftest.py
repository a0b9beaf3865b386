from tests.psych.conftest import care

__all__ = ["care"]
