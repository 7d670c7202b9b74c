"""The ingress decodes at most ``max_concurrent_decodes`` uploads at once (no server)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

from starlette.requests import Request

from liwi.serving import api
from liwi.serving.settings import ServeAppArgs
from serving.serving_support import photo, png_bytes


def _request(body: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/decompose",
        "headers": [(b"content-type", b"application/json")],
    }
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def test_decodes_wait_for_a_slot(monkeypatch):
    settings = ServeAppArgs(max_concurrent_decodes=2)
    body = json.dumps({"image": base64.b64encode(png_bytes(photo(64, 48))).decode()}).encode()
    lock, running, peak = threading.Lock(), [0], [0]
    real = api.job_from_json

    def counting(data, s):  # the real decode, counted while it runs
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.05)  # make the decodes overlap if nothing holds them back
            return real(data, s)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(api, "job_from_json", counting)

    async def main():
        slots = asyncio.Semaphore(settings.max_concurrent_decodes)
        return await asyncio.gather(
            *(api.read_job(_request(body), settings, slots) for _ in range(8))
        )

    jobs = asyncio.run(main())
    assert len(jobs) == 8 and all(j.image.shape == (48, 64, 3) for j in jobs)
    assert peak[0] == 2


def test_large_photos_reach_the_model_one_at_a_time():
    """The ingress's own scheduling: large photos wait for a slot, normal ones never do."""
    import numpy as np

    from liwi.serving.requests import DecomposeJob

    settings = ServeAppArgs(large_pixels=100 * 100, max_concurrent_large=1)
    running = {"large": 0, "normal": 0}
    peak = {"large": 0, "normal": 0}

    class CountingModelSide:  # stands in for the Serve handle: the policy is the ingress's
        async def decompose(self, job):
            kind = "large" if job.image.shape[0] * job.image.shape[1] > 100 * 100 else "normal"
            running[kind] += 1
            peak[kind] = max(peak[kind], running[kind])
            await asyncio.sleep(0.05)
            running[kind] -= 1
            return None, {}, {}

    def job(side: int) -> DecomposeJob:
        return DecomposeJob(np.zeros((side, side, 3), np.uint8), None, 2, "json")

    async def main():
        slots = asyncio.Semaphore(settings.max_concurrent_large)
        backend = CountingModelSide()
        jobs = [job(200) for _ in range(4)] + [job(50) for _ in range(4)]
        t0 = time.monotonic()
        await asyncio.gather(*(api.call_model(backend, j, settings, slots) for j in jobs))
        return time.monotonic() - t0

    elapsed = asyncio.run(main())
    assert peak == {"large": 1, "normal": 4}
    assert elapsed >= 4 * 0.05  # the four large ones ran one after another
