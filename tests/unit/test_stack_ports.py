"""The ports a test or `onbehalf run` stack hands its services are distinct before any is bound."""

from __future__ import annotations

from onbehalf.stack import CONSOLE, SERVICES, _ports_of, free_port, port_is_free


def test_a_port_already_handed_out_is_not_handed_out_again() -> None:
    taken = set(range(20_000, 32_000, 2))  # half of the range the picks come from
    for _ in range(500):
        port = free_port(taken=taken)
        assert port not in taken and port_is_free(port)


def test_a_stack_gets_a_distinct_port_for_each_process() -> None:
    for _ in range(200):  # six random picks from 12,000 met in about 1 of 800 stacks
        ports = _ports_of({"identity": 20_001})
        assert set(ports) == {*SERVICES, CONSOLE}
        assert ports["identity"] == 20_001
        assert len(set(ports.values())) == len(ports)
