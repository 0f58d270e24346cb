"""CPU time of the system's processes (user + system, from psutil), before and after a run.

The machine running the benchmarks is shared: wall-clock rates move with whoever else is busy,
CPU seconds spent per operation much less. `CpuMeter` snapshots every process of a stack (NATS,
each service and its replicas, PostgreSQL's postmaster and backends when given) and reports the
difference per process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import psutil  # type: ignore[import-untyped]  # no stubs in the venv (types-psutil)

from onbehalf.stack import Stack


def _wakeups(process: psutil.Process) -> int:
    """Times the process's threads went to sleep and were woken (voluntary context switches,
    summed over its threads): each costs a scheduler round trip, which on a virtual machine
    is dear. Ended threads (and PostgreSQL's ended backends) are not counted."""
    total = 0
    for thread in process.threads():
        try:
            with open(f"/proc/{process.pid}/task/{thread.id}/status") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
                        break
        except OSError:  # the thread ended meanwhile
            continue
    return total


def _cpu_seconds(process: psutil.Process, *, with_children: bool) -> float:
    times = process.cpu_times()
    total = times.user + times.system
    if with_children:
        # Reaped children (ended PostgreSQL backends) count in the parent's children times,
        # the live ones in their own.
        total += times.children_user + times.children_system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += child_times.user + child_times.system
    return total


@dataclass
class CpuMeter:
    """Named processes; `snapshot()` before and after, `delta()` the CPU seconds in between."""

    processes: dict[str, tuple[psutil.Process, bool]] = field(default_factory=dict)
    _before: dict[str, float] = field(default_factory=dict)
    _wakeups_before: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of_stack(cls, stack: Stack, *, postgres_pid: int | None = None) -> CpuMeter:
        meter = cls()
        if stack.nats is not None:
            meter.add("nats-server", stack.nats.process.pid)
        names: dict[int, list[str]] = {}
        for name, service in {**stack.services, **stack.replicas}.items():
            names.setdefault(service.process.pid, []).append(name)
        for pid, sharing in names.items():
            # Services co-located in one process are counted once, under their joint name.
            meter.add("+".join(sharing), pid)
        if postgres_pid is not None:
            meter.add("postgres", postgres_pid, with_children=True)
        return meter

    def add(self, name: str, pid: int, *, with_children: bool = False) -> None:
        self.processes[name] = (psutil.Process(pid), with_children)

    def _read(self) -> dict[str, float]:
        return {
            name: _cpu_seconds(process, with_children=children)
            for name, (process, children) in self.processes.items()
        }

    def snapshot(self) -> None:
        self._before = self._read()
        self._wakeups_before = self._read_wakeups()

    def _read_wakeups(self) -> dict[str, int]:
        counts = {}
        for name, (process, children) in self.processes.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                counts[name] = _wakeups(process) + sum(
                    _wakeups(child) for child in (process.children() if children else [])
                )
        return counts

    def wakeups(self) -> dict[str, int]:
        """Voluntary context switches per process since `snapshot()` (see `_wakeups`)."""
        after = self._read_wakeups()
        return {name: after[name] - self._wakeups_before.get(name, 0) for name in after}

    def delta(self) -> dict[str, float]:
        after = self._read()
        return {name: after[name] - self._before.get(name, 0.0) for name in after}


def report(
    deltas: Mapping[str, float], operations: int, *, what: str, extra: Iterable[str] = ()
) -> str:
    """Lines: CPU ms per operation for each process and the sum, largest first."""
    lines = [f"  CPU ms per {what} (user+system, sum over the system's processes):"]
    for name, seconds in sorted(deltas.items(), key=lambda item: -item[1]):
        lines.append(f"    {name:<14} {seconds * 1000 / operations:8.2f}")
    total = sum(deltas.values())
    lines.append(f"    {'TOTAL':<14} {total * 1000 / operations:8.2f}")
    lines.extend(extra)
    return "\n".join(lines)
