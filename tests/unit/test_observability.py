"""Log redaction, trace ids in logs, and collapsed stacks."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from observability.logs import REDACTED, add_trace_ids, redact_secrets

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


class TestRedaction:
    def test_secret_keys_are_blanked(self) -> None:
        event = {"password": "p", "Authorization": "Bearer x", "token": JWT, "user": "ann"}
        assert redact_secrets(None, "info", event) == {
            "password": REDACTED,
            "Authorization": REDACTED,
            "token": REDACTED,
            "user": "ann",
        }

    def test_tokens_inside_messages_are_scrubbed(self) -> None:
        event = {"event": f"header was Bearer {JWT} and raw {JWT}!"}
        assert redact_secrets(None, "info", event)["event"] == (
            f"header was Bearer {REDACTED} and raw {REDACTED}!"
        )

    def test_ordinary_text_is_untouched(self) -> None:
        event = {"event": "request", "path": "/api/info", "status": 200}
        assert redact_secrets(None, "info", dict(event)) == event


class TestTraceIds:
    def test_ids_of_the_current_span_are_added(self) -> None:
        tracer = TracerProvider().get_tracer("test")
        with tracer.start_as_current_span("s") as span:
            event = add_trace_ids(None, "info", {})
        context = span.get_span_context()
        assert event == {
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
        }

    def test_nothing_is_added_outside_a_span(self) -> None:
        assert add_trace_ids(None, "info", {}) == {}
