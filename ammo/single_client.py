"""Time each endpoint with one sequential client: a quick latency baseline, not a load test.

Usage: python ammo/single_client.py [--url http://127.0.0.1:8080] [--requests 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import requests


def timed(call: Callable[[], requests.Response], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        reply = call()
        samples.append((time.perf_counter() - started) * 1000)
        if reply.status_code >= 500:
            raise SystemExit(f"server error {reply.status_code}: {reply.text}")
    return samples


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    p50 = statistics.median(ordered)
    print(f"{name:<22} n={len(ordered):<5} p50={p50:6.2f} ms  p99={p99:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    url, n = args.url, args.requests
    session = requests.Session()
    run = uuid.uuid4().hex[:8]
    names = iter(f"timing-{run}-{i}" for i in range(10 * n))

    def sign_up() -> requests.Response:
        return session.post(f"{url}/api/auth", json={"username": next(names), "password": "pw"})

    report("POST /api/auth (new)", timed(sign_up, max(20, n // 10)))
    buyer, friend = f"timing-{run}-buyer", f"timing-{run}-friend"
    for name in (buyer, friend):
        token = session.post(f"{url}/api/auth", json={"username": name, "password": "pw"}).json()
    auth = {"Authorization": f"Bearer {token['token']}"}
    login = {"username": friend, "password": "pw"}
    report(
        "POST /api/auth (login)",
        timed(lambda: session.post(f"{url}/api/auth", json=login), max(20, n // 10)),
    )
    report("GET /api/info", timed(lambda: session.get(f"{url}/api/info", headers=auth), n))
    report(
        "GET /api/buy/pen",
        timed(lambda: session.get(f"{url}/api/buy/pen", headers=auth), min(n, 40)),
    )
    send = {"toUser": buyer, "amount": 1}
    report(
        "POST /api/sendCoin",
        timed(lambda: session.post(f"{url}/api/sendCoin", json=send, headers=auth), min(n, 500)),
    )


if __name__ == "__main__":
    main()
