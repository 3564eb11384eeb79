"""Measure the emulator's own cost per request: ``python -m gcpemu.bench [--requests N] [--concurrency C]``.

Starts the emulator as a subprocess (so its CPU time is its own), drives it with an aiohttp client at the
given concurrency (GETs of a service, list, IAM reads, and a share of writes), and reports the server's CPU
seconds per request (from ``/_emulator/stats``), throughput and client-observed latency percentiles.
Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp

from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess

PARENT = "/v2/projects/demo-project/locations/us-central1"
BODY = {"template": {"containers": [{"image": "gcr.io/demo/app:1"}]}, "iapEnabled": True}


async def _drive(base: str, total: int, concurrency: int, mix: str) -> list[float]:
    latencies: list[float] = []
    conn = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(total):
            queue.put_nowait(i)

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                svc = f"svc-{i % 20}"
                t0 = time.perf_counter()
                if mix == "get" or i % 10 < 7:
                    url = f"{base}{PARENT}/services/{svc}?%24alt=json%3Benum-encoding%3Dint"
                    async with session.get(url) as r:
                        await r.read()
                        assert r.status == 200, r.status
                elif i % 10 == 7:
                    async with session.get(f"{base}{PARENT}/services/{svc}:getIamPolicy") as r:
                        await r.read()
                elif i % 10 == 8:
                    async with session.get(f"{base}{PARENT}/services?pageSize=5") as r:
                        await r.read()
                else:
                    url = f"{base}{PARENT}/services/{svc}?updateMask=iapEnabled"
                    async with session.patch(url, json={"iapEnabled": i % 20 < 10}) as r:
                        await r.read()
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def run(total: int, concurrency: int, mix: str) -> dict[str, Any]:
    with EmulatorProcess({"operation_delay": 0.05}) as proc:
        admin = AdminClient(proc.base_url)
        asyncio.run(_seed(proc.base_url))
        s0 = admin.stats()
        t0 = time.perf_counter()
        lat = asyncio.run(_drive(proc.base_url, total, concurrency, mix))
        wall = time.perf_counter() - t0
        s1 = admin.stats()
    cpu = s1["cpu_seconds"] - s0["cpu_seconds"]
    n = s1["requests"] - s0["requests"]  # admin calls are not logged
    lat.sort()
    return {
        "mix": mix,
        "requests": n,
        "concurrency": concurrency,
        "server_cpu_seconds": round(cpu, 3),
        "server_cpu_ms_per_request": round(cpu / n * 1000, 4),
        "wall_seconds": round(wall, 3),
        "throughput_rps": round(n / wall, 1),
        "client_latency_ms_p50": round(statistics.median(lat) * 1000, 2),
        "client_latency_ms_p99": round(lat[int(len(lat) * 0.99) - 1] * 1000, 2),
    }


async def _seed(base: str) -> None:
    async with aiohttp.ClientSession() as s:
        for i in range(20):
            async with s.post(f"{base}{PARENT}/services?serviceId=svc-{i}", json=BODY) as r:
                assert r.status == 200, await r.text()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--concurrency", type=int, default=300)
    p.add_argument("--mix", choices=("get", "mixed"), default="get")
    args = p.parse_args()
    print(json.dumps(run(args.requests, args.concurrency, args.mix), indent=2))


if __name__ == "__main__":
    main()
