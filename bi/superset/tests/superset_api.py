"""A small client of Superset's REST API (/api/v1), logged in as a database user with a JWT."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests


@dataclass
class Superset:
    address: str
    username: str
    password: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self):
        response = self.session.post(f"{self.address}/api/v1/security/login", json={
            "username": self.username, "password": self.password, "provider": "db", "refresh": False,
        }, timeout=60)
        assert response.status_code == 200, f"login: {response.status_code} {response.text}"
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, **params):
        response = self.session.get(f"{self.address}{path}", params=params, timeout=120)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:2000]}"
        return response.json()

    def list(self, resource: str) -> list[dict]:
        """Every object of /api/v1/<resource>/ (one page of up to 100 is plenty here; more fails)."""
        body = self.get(f"/api/v1/{resource}/", q="(page:0,page_size:100)")
        assert body["count"] == len(body["result"]), f"{resource}: {body['count']} objects, more than a page"
        return body["result"]

    def dashboard_charts(self, dashboard_id: int) -> list[dict]:
        return self.get(f"/api/v1/dashboard/{dashboard_id}/charts")["result"]

    def chart_data(self, chart_id: int) -> list[dict]:
        """The results of the chart's saved data query (its query_context), one per query."""
        return self.get(f"/api/v1/chart/{chart_id}/data/")["result"]
