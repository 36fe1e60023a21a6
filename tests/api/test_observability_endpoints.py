"""/metrics and /debug in-process (single process, default registry)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.helpers import Login, error_of


class TestMetrics:
    def test_metrics_are_exposed_in_text_format(self, client: FlaskClient, login: Login) -> None:
        client.get("/api/info", headers=login().headers)
        reply = client.get("/metrics")
        assert reply.status_code == 200
        assert reply.content_type.startswith("text/plain")
        text = reply.get_data(as_text=True)
        assert 'http_route="/api/info"' in text
        assert 'le="0.05"' in text

    def test_unknown_methods_fold_into_other(self, client: FlaskClient) -> None:
        client.open("/api/info", method="BREW")
        text = client.get("/metrics").get_data(as_text=True)
        assert 'http_request_method="_OTHER"' in text
        assert "BREW" not in text


class TestDebug:
    @pytest.mark.parametrize("path", ["/debug/pprof/", "/debug/pprof/profile", "/debug/pprof/heap"])
    def test_debug_is_404_json_without_a_configured_token(
        self, client: FlaskClient, path: str
    ) -> None:
        reply = client.get(path, headers={"Authorization": "Bearer anything"})
        assert reply.status_code == 404
        assert error_of(reply)
