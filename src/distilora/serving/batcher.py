"""Micro-batching: concurrent requests wait a few milliseconds so one forward pass serves them all."""
from __future__ import annotations

import asyncio
from typing import Callable

import numpy as np


class MicroBatcher:
    """Collects texts from concurrent callers for up to ``wait_ms`` (or ``max_texts``) and predicts them together.

    ``predict`` runs in a worker thread so the event loop keeps accepting requests meanwhile.
    """

    def __init__(self, predict: Callable[[list[str]], np.ndarray], wait_ms: float, max_texts: int,
                 observe: Callable[[int, int], None] | None = None):
        self.predict = predict
        self.observe = observe or (lambda texts, waiting: None)  # (texts in this model call, requests still queued)
        self.wait = wait_ms / 1000
        self.max_texts = max_texts
        self.queue: asyncio.Queue[tuple[list[str], asyncio.Future]] = asyncio.Queue()
        self.worker: asyncio.Task | None = None

    async def __call__(self, texts: list[str]) -> np.ndarray:
        if self.wait <= 0:
            self.observe(len(texts), 0)
            return await asyncio.to_thread(self.predict, texts)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            size = len(jobs[0][0])
            deadline = asyncio.get_running_loop().time() + self.wait
            while size < self.max_texts:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                size += len(job[0])
            texts = [t for job_texts, _ in jobs for t in job_texts]
            self.observe(len(texts), self.queue.qsize())
            try:
                probs = await asyncio.to_thread(self.predict, texts)
            except Exception:  # one request's texts must not fail the others': retry each request on its own
                await self._one_by_one(jobs)
                continue
            start = 0
            for job_texts, future in jobs:
                if not future.done():
                    future.set_result(probs[start:start + len(job_texts)])
                start += len(job_texts)

    async def _one_by_one(self, jobs: list[tuple[list[str], asyncio.Future]]) -> None:
        for job_texts, future in jobs:
            try:
                result = await asyncio.to_thread(self.predict, job_texts)
            except Exception as err:
                if not future.done():
                    future.set_exception(err)
                continue
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
