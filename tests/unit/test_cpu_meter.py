"""The benchmarks' CPU meter: CPU seconds and wake-ups of a process, counted over all its threads."""

from __future__ import annotations

import os
import threading

from bench.cpu import CpuMeter


def test_the_meter_counts_the_wake_ups_of_every_thread_of_a_process() -> None:
    """A thread that sleeps on an event and is woken, again and again, is counted: the figure
    bench/order_throughput.py prints per order comes from all threads, not the main one's."""
    meter = CpuMeter()
    meter.add("this test", os.getpid())
    ping, pong, never, done = (threading.Event() for _ in range(4))
    rounds = 50

    def sleeper() -> None:
        for _ in range(rounds):
            ping.wait(timeout=10)
            ping.clear()
            # Three more sleeps of this thread alone (a timed wait is what is measured here).
            for _ in range(3):
                never.wait(timeout=0.0005)
            pong.set()
        done.wait(timeout=10)  # alive until counted: an ended thread's count is gone

    thread = threading.Thread(target=sleeper)
    thread.start()
    meter.snapshot()
    for _ in range(rounds):
        ping.set()
        assert pong.wait(timeout=10)
        pong.clear()
    woken = meter.wakeups()["this test"]
    done.set()
    thread.join(timeout=10)
    # Each round puts the main thread to sleep once and the other four times: counting the
    # main thread alone would give about a fifth of this.
    assert woken >= 4 * rounds
    assert meter.delta()["this test"] >= 0.0


def test_a_meter_with_no_snapshot_counts_from_zero() -> None:
    meter = CpuMeter()
    meter.add("this test", os.getpid())
    assert meter.wakeups()["this test"] > 0
