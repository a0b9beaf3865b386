from tests.support.logcheck import no_logged_exceptions  # noqa: F401  (autouse)
