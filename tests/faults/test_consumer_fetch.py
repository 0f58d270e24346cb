"""How a consumer asks JetStream for its batches: no pull request that can only come back empty."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, StorageType, StreamConfig

from libs.common.bus import EVENTS_STREAM
from libs.common.consumer import _next_batch
from onbehalf.stack import start_nats


def test_a_batch_asks_for_what_waits_and_nothing_more(tmp_path: Path) -> None:
    """Five stored events come as one batch in two pull requests (the first message, then the
    four its delivery says wait behind it); a lone event in one. Before, every batch cost
    three: a no-wait request answered 'no messages' and one more that expired 5 ms later."""
    server = start_nats(tmp_path / "nats")
    subject = f"events.trial{uuid.uuid4().hex[:8]}.x"
    durable = "trial-fetch"

    async def scenario() -> tuple[list[int], list[int]]:
        client = await nats.connect(server.url)
        spy = await nats.connect(server.url)
        try:
            js = client.jetstream()
            await js.add_stream(
                StreamConfig(name=EVENTS_STREAM, subjects=["events.>"], storage=StorageType.FILE)
            )
            await js.add_consumer(
                EVENTS_STREAM,
                config=ConsumerConfig(durable_name=durable, filter_subject=subject),
            )
            pulls = await spy.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{durable}")
            await spy.flush()
            subscription = await js.pull_subscribe_bind(durable=durable, stream=EVENTS_STREAM)

            async def requests_for(count: int) -> tuple[int, int]:
                for n in range(count):
                    await js.publish(subject, str(n).encode())
                batch = await _next_batch(subscription, 16, 0.0)
                for message in batch:
                    await message.ack()
                # Every request the consumer sent has reached the spy once its own client's
                # buffer is flushed and the spy's round trip is done (same server, in order).
                await client.flush()
                await spy.flush()
                asked = 0
                while True:
                    try:
                        await pulls.next_msg(timeout=0.05)
                    except nats.errors.TimeoutError:
                        return len(batch), asked
                    asked += 1

            five = await requests_for(5)
            one = await requests_for(1)
            return list(five), list(one)
        finally:
            await client.close()
            await spy.close()

    try:
        five, one = asyncio.run(scenario())
    finally:
        server.stop()
    assert five == [5, 2]
    assert one == [1, 1]


def test_a_lingering_consumer_takes_what_arrives_meanwhile_in_the_same_batch(
    tmp_path: Path,
) -> None:
    """With a linger (audit's, cart's safety net's), events that arrive after the first one
    and within the linger come in its batch, for two pull requests: one handling and one
    transaction for all of them. Without it, the first would be a batch of its own."""
    server = start_nats(tmp_path / "nats")
    subject = f"events.trial{uuid.uuid4().hex[:8]}.x"
    durable = "trial-linger"

    async def scenario() -> tuple[int, int]:
        client = await nats.connect(server.url)
        spy = await nats.connect(server.url)
        try:
            js = client.jetstream()
            await js.add_stream(
                StreamConfig(name=EVENTS_STREAM, subjects=["events.>"], storage=StorageType.FILE)
            )
            await js.add_consumer(
                EVENTS_STREAM,
                config=ConsumerConfig(durable_name=durable, filter_subject=subject),
            )
            pulls = await spy.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{durable}")
            await spy.flush()
            subscription = await js.pull_subscribe_bind(durable=durable, stream=EVENTS_STREAM)
            await js.publish(subject, b"first")
            taking = asyncio.create_task(_next_batch(subscription, 16, 1.0))
            await pulls.next_msg(timeout=10)  # the first pull request is out
            for n in range(4):
                await js.publish(subject, str(n).encode())
            batch = await asyncio.wait_for(taking, timeout=10)
            for message in batch:
                await message.ack()
            await client.flush()
            await spy.flush()
            asked = 1
            while True:
                try:
                    await pulls.next_msg(timeout=0.05)
                except nats.errors.TimeoutError:
                    return len(batch), asked
                asked += 1
        finally:
            await client.close()
            await spy.close()

    try:
        taken, asked = asyncio.run(scenario())
    finally:
        server.stop()
    assert (taken, asked) == (5, 2)
