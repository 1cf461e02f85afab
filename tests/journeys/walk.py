"""What every journey uses: the real API server as one person's app, and the notebook in which
that person writes what they saw and what looked wrong.

A journey goes on after something looks wrong, as a person would, so that one failing run
lists every wrong thing at once; only a request that fails outright (not 200) stops it. The
notebook prints each figure as it is seen (``pytest -s``) and ends with one assertion whose
message holds the problems and every figure.
"""

from __future__ import annotations

from typing import Any

import httpx

PAGE = 1000


class Api:
    """HTTP to the real server with one key, as that person's app would send it."""

    def __init__(self, base: str, key: str) -> None:
        self.client = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30)
        self.requests = 0

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def call(self, method: str, path: str, **params: Any) -> tuple[int, Any]:
        """(status, JSON body) of one request."""
        self.requests += 1
        response = self.client.request(method, path, params=params)
        body = response.json() if response.content else None
        return response.status_code, body

    def get(self, path: str, **params: Any) -> Any:
        """The JSON body of a GET that must answer 200."""
        status, body = self.call("GET", path, **params)
        if status != 200:
            raise AssertionError(f"GET {path} {params} answered {status}: {str(body)[:800]}")
        return body

    def items(self, path: str, **params: Any) -> list[Any]:
        """Every item of a paged list, page by page."""
        found: list[Any] = []
        while True:
            page = self.get(path, limit=PAGE, offset=len(found), **params)
            found += page["items"]
            if page["count"] < PAGE:
                return found


class Notebook:
    """What one person saw on their walk, and what looked wrong to them."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.seen: list[str] = []
        self.wrong: list[str] = []

    def see(self, line: str) -> None:
        self.seen.append(line)
        print(f"[{self.who}] {line}")

    def check(self, ok: bool, problem: str) -> bool:
        """Note ``problem`` unless ``ok``; returns ``ok``."""
        if not ok:
            self.wrong.append(problem)
            print(f"[{self.who}] WRONG: {problem}")
        return ok

    def done(self) -> None:
        """The journey's verdict: fail with every problem and every figure seen."""
        if self.wrong:
            listing = "\n".join(f"  - {p}" for p in self.wrong)
            figures = "\n".join(f"  {line}" for line in self.seen)
            raise AssertionError(
                f"{self.who}: {len(self.wrong)} things looked wrong:\n{listing}\n"
                f"what {self.who} saw:\n{figures}"
            )
