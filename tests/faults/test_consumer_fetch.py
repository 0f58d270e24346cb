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
