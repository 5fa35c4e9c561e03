"""Per-request context shared by logging, error bodies and middleware."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return request_id_var.get()
