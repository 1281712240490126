"""Driving postwire through its public HTTP API, as a user would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Urls:
    """Where each service's API answers (all the same when run as ``all``)."""

    ingest: str
    events: str
    notifier: str

    @classmethod
    def single(cls, url: str) -> Urls:
        return cls(url, url, url)


def envelope(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"Code", "Description", "Result"}, body
    return body


@dataclass
class Tenant:
    """An account with a verified domain and a sender, made through the API."""

    urls: Urls
    name: str
    api_user: str
    api_key: str
    domain: str
    sender: str
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @classmethod
    async def create(cls, urls: Urls, admin_token: str, name: str, domain: str) -> Tenant:
        admin = {"Authorization": f"Bearer {admin_token}"}
        async with httpx.AsyncClient(base_url=urls.ingest, timeout=30) as client:
            made = await client.post("/v1/admin/accounts", json={"name": name}, headers=admin)
            assert made.status_code == 201, made.text
            creds = made.json()["Result"]
            auth = httpx.BasicAuth(creds["api_user"], creds["api_key"])
            answer = await client.post("/v1/domains", json={"name": domain}, auth=auth)
            assert answer.status_code == 201, answer.text
            answer = await client.post(f"/v1/admin/domains/{domain}/verified", headers=admin)
            assert answer.status_code == 200, answer.text
            sender = f"news@{domain}"
            answer = await client.post(
                "/v1/senders", json={"address": sender, "alias": f"{name} news"}, auth=auth
            )
            assert answer.status_code == 201, answer.text
        return cls(urls, name, creds["api_user"], creds["api_key"], domain, sender)

    def client(self, service: str) -> httpx.AsyncClient:
        if service not in self._clients:
            self._clients[service] = httpx.AsyncClient(
                base_url=getattr(self.urls, service),
                auth=httpx.BasicAuth(self.api_user, self.api_key),
                timeout=30,
            )
        return self._clients[service]

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def send(
        self, to: list[str] | str, *, idempotency_key: str | None = None, **fields: Any
    ) -> httpx.Response:
        body = {"from": self.sender, "to": to, "subject": "Hello", "text": "Hi there", **fields}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.client("ingest").post("/v1/messages", json=body, headers=headers)

    async def message(self, env_id: str) -> httpx.Response:
        return await self.client("events").get(f"/v1/messages/{env_id}")

    async def status(self, env_id: str) -> str | None:
        answer = await self.message(env_id)
        if answer.status_code != 200:
            return None
        return str(answer.json()["Result"]["status"])

    async def wait_for_status(self, env_id: str, *statuses: str, within: float = 30) -> str:
        """Poll until the message has one of ``statuses``; return it."""
        from postwire_testkit.wait import eventually

        async def check() -> str | None:
            status = await self.status(env_id)
            return status if status in statuses else None

        return await eventually(check, within=within, what=f"{env_id} in {statuses}")

    async def add_webhook(self, url: str, events: list[str]) -> dict[str, Any]:
        answer = await self.client("notifier").post(
            "/v1/webhooks", json={"url": url, "events": events}
        )
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()["Result"]
        return result
