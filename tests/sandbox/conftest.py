"""A tiny third-party client that follows OPEN_API.md to the letter, to talk to the sandbox in these tests."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import requests


def doc_sign(params: dict[str, str], secret: str) -> str:
    """The documented signature: sorted name+value pairs, the secret appended, MD5 lower-case hex."""
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign") + secret
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class Api:
    """Signed and unsigned calls against one base URL with one key pair; answers are parsed JSON bodies."""

    def __init__(self, url: str, api_key: str, secret_key: str) -> None:
        self.url = url
        self.api_key = api_key
        self.secret_key = secret_key
        self.session = requests.Session()

    def signed_params(self, params: dict[str, str], *, stamp: str | None = None) -> dict[str, str]:
        """``params`` with api_key, time (ms now unless given) and sign added."""
        full = {**params, "api_key": self.api_key, "time": stamp or str(int(time.time() * 1000))}
        full["sign"] = doc_sign(full, self.secret_key)
        return full

    def get(self, path: str, params: dict[str, str] | None = None) -> requests.Response:
        """An unsigned GET."""
        return self.session.get(self.url + path, params=params or {}, timeout=10)

    def sget(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """A signed GET; the parsed body (HTTP status must be 200)."""
        response = self.session.get(self.url + path, params=self.signed_params(params or {}), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def spost(self, path: str, params: dict[str, str]) -> requests.Response:
        """A signed, form-encoded POST; the raw response."""
        return self.session.post(self.url + path, data=self.signed_params(params), timeout=10)

    def replace(
        self, symbol: str, cancel: list[Any] | None = None, place: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """mass_replaceV2 with compact JSON lists (omitted when None); the parsed body."""
        params = {"symbol": symbol}
        if cancel is not None:
            params["mass_cancel"] = json.dumps(cancel, separators=(",", ":"))
        if place is not None:
            params["mass_place"] = json.dumps(place, separators=(",", ":"))
        response = self.spost("/open/api/mass_replaceV2", params)
        assert response.status_code == 200, response.text
        return response.json()

    def open_orders(self, symbol: str, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every open order, page by page, until ``count`` rows are in hand or a page is empty."""
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.sget(
                "/open/api/v2/new_order", {"symbol": symbol, "page": str(page), "pageSize": str(page_size)}
            )
            assert body["code"] == "0", body
            batch = body["data"]["resultList"]
            rows.extend(batch)
            if not batch or len(rows) >= body["data"]["count"]:
                return rows
            page += 1

    def balances(self) -> dict[str, tuple[str, str]]:
        """coin → (normal, locked) as the texts the server sent."""
        body = self.sget("/open/api/user/account")
        assert body["code"] == "0", body
        return {c["coin"]: (c["normal"], c["locked"]) for c in body["data"]["coin_list"]}

    @staticmethod
    def item(side: str, price: str, volume: str) -> dict[str, str]:
        """One mass_place item as the product sends it."""
        return {"side": side, "type": "1", "volume": volume, "price": price}

    @staticmethod
    def placed_ids(answer: dict[str, Any]) -> list[int]:
        """The ids of the success group of a grouped mass_place answer."""
        ids: list[int] = []
        for group in answer["data"]["mass_place"]:
            if group["code"] == "0":
                ids.extend(group["order_id"])
        return ids


@pytest.fixture
def api(sandbox: Any) -> Api:
    """A documented client for the demo account of the fresh sandbox."""
    return Api(sandbox.url, sandbox.api_key, sandbox.secret_key)
