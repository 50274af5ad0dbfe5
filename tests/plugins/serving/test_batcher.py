"""The dynamic batcher: batches form under load, deadlines, bounded queue, isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from mmship.serving.batcher import (
    BatchObserver,
    DeadlineExceededError,
    DynamicBatcher,
    QueueFullError,
    RequestTooLargeError,
)
from mmship.serving.service import pad_stacker


def doubler(batches: list[int], delay: float = 0.0):
    def run(feeds):
        batches.append(len(feeds["x"]))
        if delay:
            time.sleep(delay)
        if np.any(feeds["x"] < 0):
            raise ValueError("negative input")
        return {"y": feeds["x"] * 2}

    return run


def run_async(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_batches_and_get_their_own_rows():
    batches: list[int] = []

    async def main():
        batcher = DynamicBatcher("g", doubler(batches, delay=0.02), max_batch_size=8, max_delay_ms=20)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit({"x": np.array([[i]], np.float32)}, 5) for i in range(16)))
        await batcher.stop()
        return results

    results = run_async(main())
    assert [float(r["y"][0, 0]) for r in results] == [2.0 * i for i in range(16)]
    assert max(batches) > 1, batches
    assert max(batches) <= 8
    assert sum(batches) == 16


def test_single_request_is_not_held_longer_than_max_delay():
    batches: list[int] = []

    async def main():
        batcher = DynamicBatcher("g", doubler(batches), max_batch_size=32, max_delay_ms=5)
        batcher.start()
        start = time.perf_counter()
        await batcher.submit({"x": np.ones((1, 1), np.float32)}, 5)
        took = time.perf_counter() - start
        await batcher.stop()
        return took

    assert run_async(main()) < 0.5
    assert batches == [1]


def test_bad_request_in_a_batch_fails_only_itself():
    batches: list[int] = []

    async def main():
        batcher = DynamicBatcher("g", doubler(batches, delay=0.01), max_batch_size=8, max_delay_ms=30)
        batcher.start()
        values = [1, 2, -1, 3]
        results = await asyncio.gather(
            *(batcher.submit({"x": np.array([[v]], np.float32)}, 5) for v in values), return_exceptions=True
        )
        await batcher.stop()
        return results

    results = run_async(main())
    assert isinstance(results[2], ValueError)
    assert [float(r["y"][0, 0]) for i, r in enumerate(results) if i != 2] == [2.0, 4.0, 6.0]


def test_queue_full_raises_with_retry_after():
    gate = threading.Event()

    def slow(feeds):
        gate.wait(5)
        return {"y": feeds["x"]}

    async def main():
        batcher = DynamicBatcher("g", slow, max_batch_size=1, max_delay_ms=0, max_queue_rows=2)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}, 5))
        await asyncio.sleep(0.05)  # the first is running; two more fill the queue
        waiting = [asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}, 5)) for _ in range(2)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError) as info:
            await batcher.submit({"x": np.ones((1, 1))}, 5)
        gate.set()
        await asyncio.gather(first, *waiting)
        await batcher.stop()
        return info.value

    error = run_async(main())
    assert error.retry_after > 0
    assert "queue is full" in str(error)


def test_a_request_larger_than_the_whole_queue_is_refused_not_told_to_retry():
    async def main():
        batcher = DynamicBatcher("g", lambda feeds: {"y": feeds["x"]}, max_batch_size=4, max_queue_rows=8)
        batcher.start()
        try:
            with pytest.raises(RequestTooLargeError, match="9 rows .* at most 8"):
                await batcher.submit({"x": np.ones((9, 1))}, 5)
            return await batcher.submit({"x": np.ones((8, 1))}, 5)
        finally:
            await batcher.stop()

    assert run_async(main())["y"].shape == (8, 1)


def test_deadline_exceeded():
    gate = threading.Event()

    def slow(feeds):
        gate.wait(5)
        return {"y": feeds["x"]}

    async def main():
        batcher = DynamicBatcher("g", slow, max_batch_size=1, max_delay_ms=0)
        batcher.start()
        with pytest.raises(DeadlineExceededError):
            await batcher.submit({"x": np.ones((1, 1))}, 0.1)
        gate.set()
        await batcher.stop()

    run_async(main())


def test_observer_sees_batch_sizes_and_queue_depth():
    seen: list[int] = []
    depths: list[int] = []
    observer = BatchObserver(on_batch=lambda g, rows, s: seen.append(rows), on_queue_depth=lambda g, d: depths.append(d))

    async def main():
        batcher = DynamicBatcher("g", doubler([], delay=0.01), max_batch_size=4, max_delay_ms=10, observer=observer)
        batcher.start()
        await asyncio.gather(*(batcher.submit({"x": np.ones((1, 1), np.float32)}, 5) for _ in range(8)))
        await batcher.stop()

    run_async(main())
    assert sum(seen) == 8 and max(seen) > 1
    assert max(depths) >= 1 and depths[-1] == 0


def test_pad_stacker_pads_text_to_the_longest_row():
    stack = pad_stacker({"input_ids": 7, "attention_mask": 0})
    a = {"input_ids": np.array([[1, 2, 3]]), "attention_mask": np.array([[1, 1, 1]])}
    b = {"input_ids": np.array([[4, 5]]), "attention_mask": np.array([[1, 1]])}
    out = stack([a, b])
    assert out["input_ids"].tolist() == [[1, 2, 3], [4, 5, 7]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_lone_request_does_not_wait_for_company_when_idle():
    async def main():
        batcher = DynamicBatcher("g", doubler([]), max_batch_size=32, max_delay_ms=800)
        batcher.start()
        took = []
        for _ in range(3):
            start = time.perf_counter()
            await batcher.submit({"x": np.ones((1, 1), np.float32)}, 5)
            took.append(time.perf_counter() - start)
        await batcher.stop()
        return took

    assert max(run_async(main())) < 0.4  # far below the 0.8 s max delay


def test_under_load_the_batcher_waits_to_fill_batches():
    batches: list[int] = []

    async def main():
        batcher = DynamicBatcher("g", doubler(batches, delay=0.005), max_batch_size=64, max_delay_ms=50)
        batcher.start()

        async def client(i):
            await asyncio.sleep(0.002 * i)  # arrivals spread over 64 ms
            return await batcher.submit({"x": np.ones((1, 1), np.float32)}, 5)

        await asyncio.gather(*(client(i) for i in range(32)))
        await batcher.stop()

    run_async(main())
    assert len(batches) < 16, batches


def test_a_request_run_alone_is_prepared_and_run_in_one_trip_to_the_batchers_thread():
    threads: list[str] = []
    runs: list[tuple[str, int, int]] = []

    def prepare():
        threads.append(threading.current_thread().name)
        return {"x": np.array([[3.0]], np.float32)}

    def runner(feeds):
        threads.append(threading.current_thread().name)
        return {"y": feeds["x"] * 2}

    async def main():
        observer = BatchObserver(on_run=lambda graph, requests, rows, seconds: runs.append((graph, requests, rows)))
        batcher = DynamicBatcher("g", runner, observer=observer)
        assert not batcher.idle()  # not started: nothing may run
        batcher.start()
        assert batcher.idle()
        result = await batcher.run_alone(prepare, 5)
        idle_after = batcher.idle()
        await batcher.stop()
        return result, idle_after

    result, idle_after = run_async(main())
    assert float(result["y"][0, 0]) == 6.0
    assert threads[0] == threads[1] and threads[0].startswith("mmship-g")  # the same thread: one trip
    assert runs == [("g", 1, 1)] and idle_after


def test_requests_arriving_while_one_runs_alone_queue_behind_it():
    release = threading.Event()
    order: list[str] = []

    def runner(feeds):
        order.append(f"run {int(feeds['x'][0, 0])}")
        return {"y": feeds["x"]}

    def slow_prepare():
        release.wait(5)
        order.append("prepared 0")
        return {"x": np.array([[0.0]], np.float32)}

    async def main():
        batcher = DynamicBatcher("g", runner, max_batch_size=8, max_delay_ms=1)
        batcher.start()
        alone = asyncio.ensure_future(batcher.run_alone(slow_prepare, 5))
        await asyncio.sleep(0.05)
        busy = not batcher.idle()
        queued = asyncio.ensure_future(batcher.submit({"x": np.array([[1.0]], np.float32)}, 5))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(alone, queued)
        await batcher.stop()
        return busy

    assert run_async(main())  # not idle while it runs: the next request takes the queue
    assert order == ["prepared 0", "run 0", "run 1"]


def test_a_request_run_alone_past_its_deadline_fails_and_the_batcher_stays_busy_until_its_thread_is_done():
    release = threading.Event()

    def prepare():
        release.wait(5)
        return {"x": np.array([[1.0]], np.float32)}

    async def main():
        batcher = DynamicBatcher("g", lambda feeds: {"y": feeds["x"]})
        batcher.start()
        with pytest.raises(DeadlineExceededError):
            await batcher.run_alone(prepare, 0.05)
        busy = not batcher.idle()  # the thread still works on it: nothing else may run alone
        release.set()
        for _ in range(100):
            if batcher.idle():
                break
            await asyncio.sleep(0.01)
        idle = batcher.idle()
        await batcher.stop()
        return busy, idle

    assert run_async(main()) == (True, True)


def test_an_error_while_preparing_reaches_the_caller_and_leaves_the_batcher_idle():
    def prepare():
        raise ValueError("not an image")

    async def main():
        batcher = DynamicBatcher("g", lambda feeds: {"y": feeds["x"]})
        batcher.start()
        with pytest.raises(ValueError, match="not an image"):
            await batcher.run_alone(prepare, 5)
        await asyncio.sleep(0)
        idle = batcher.idle()
        await batcher.stop()
        return idle

    assert run_async(main())


def test_after_a_batch_of_several_requests_none_runs_alone_until_traffic_is_light_again():
    async def main():
        batcher = DynamicBatcher("g", doubler([], delay=0.02), max_batch_size=8, max_delay_ms=20)
        batcher.start()
        await asyncio.gather(*(batcher.submit({"x": np.array([[i]], np.float32)}, 5) for i in range(4)))
        after_batch = batcher.idle()  # the next one had better wait for company
        await batcher.submit({"x": np.array([[1]], np.float32)}, 5)
        after_lone = batcher.idle()
        await batcher.stop()
        return after_batch, after_lone

    assert run_async(main()) == (False, True)


def test_a_request_larger_than_a_batch_or_the_queue_does_not_run_alone():
    async def main():
        roomy = DynamicBatcher("g", lambda feeds: feeds, max_batch_size=4, max_queue_rows=8)
        tight = DynamicBatcher("t", lambda feeds: feeds, max_batch_size=8, max_queue_rows=2)
        roomy.start()
        tight.start()
        verdicts = (roomy.can_run_alone(4), roomy.can_run_alone(5), tight.can_run_alone(2), tight.can_run_alone(3))
        await roomy.stop()
        await tight.stop()
        return verdicts

    # one past the batch, one past the queue: both take submit (which refuses the second)
    assert run_async(main()) == (True, False, True, False)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_batcher_with_n_streams_runs_n_batches_at_once(concurrency):
    """Two batches meet inside the runner only when the batcher runs two at once; with one
    slot the second waits for the first (the control: the meeting times out)."""
    meeting = threading.Barrier(2, timeout=3.0)
    met, lock = [], threading.Lock()
    entered = threading.Event()

    def runner(feeds):
        if not entered.is_set():
            entered.set()
            try:
                meeting.wait()
                with lock:
                    met.append(True)
            except threading.BrokenBarrierError:
                pass
        else:
            try:
                meeting.wait()
            except threading.BrokenBarrierError:
                pass
        return {"y": feeds["x"] * 2}

    async def main():
        batcher = DynamicBatcher("g", runner, max_batch_size=1, max_delay_ms=0, concurrency=concurrency)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit({"x": np.full((1, 1), i, np.float32)}, 10) for i in range(4)))
        await batcher.stop()
        return results

    results = run_async(main())
    assert [float(r["y"][0, 0]) for r in results] == [0.0, 2.0, 4.0, 6.0]
    assert bool(met) is (concurrency == 2)


def test_with_two_streams_a_failing_batch_still_fails_only_its_request():
    async def main():
        batcher = DynamicBatcher("g", doubler([], delay=0.01), max_batch_size=2, max_delay_ms=5, concurrency=2)
        batcher.start()
        values = [1.0, -1.0, 2.0, 3.0, 4.0, 5.0]
        outcomes = await asyncio.gather(
            *(batcher.submit({"x": np.full((1, 1), v, np.float32)}, 5) for v in values), return_exceptions=True
        )
        after = await batcher.submit({"x": np.full((1, 1), 7.0, np.float32)}, 5)  # both slots were given back
        await batcher.stop()
        return values, outcomes, after

    values, outcomes, after = run_async(main())
    for value, outcome in zip(values, outcomes):
        if value < 0:
            assert isinstance(outcome, ValueError)
        else:
            assert float(outcome["y"][0, 0]) == 2 * value
    assert float(after["y"][0, 0]) == 14.0


def test_a_lone_request_runs_on_the_alone_runner_and_batches_on_the_streams():
    used: list[str] = []

    def streams(feeds):
        used.append(f"streams {len(feeds['x'])}")
        return {"y": feeds["x"] * 2}

    def every_thread(feeds):
        used.append(f"alone {len(feeds['x'])}")
        return {"y": feeds["x"] * 2}

    async def main():
        batcher = DynamicBatcher("g", streams, max_batch_size=4, concurrency=2, alone_runner=every_thread)
        batcher.start()
        alone = await batcher.run_alone(lambda: {"x": np.array([[1.0]], np.float32)}, 5)
        queued = await batcher.submit({"x": np.array([[2.0], [3.0]], np.float32)}, 5)
        await batcher.stop()
        return alone, queued

    alone, queued = run_async(main())
    assert float(alone["y"][0, 0]) == 2.0 and queued["y"][:, 0].tolist() == [4.0, 6.0]
    assert used == ["alone 1", "streams 2"]
