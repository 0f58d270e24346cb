"""Three nats-server processes clustered with JetStream, as the Kubernetes StatefulSet runs them.

Each node is started the way `make run` starts its one NATS (`onbehalf.stack.start_nats`: the
generated users and permissions, JetStream on, its own store), plus what a cluster adds: a
`server_name`, a `cluster {}` block with routes to all three nodes, and a monitoring port whose
`/healthz` answers 200 only once the node has a JetStream meta leader and its streams are
current (the StatefulSet's readiness probe asks the same).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from onbehalf.stack import NatsServer, free_port, start_nats
from tests.support import wait_until

CLUSTER_NAME = "onbehalf"


@dataclass
class ClusterNode:
    name: str
    client_port: int
    route_port: int
    monitor_port: int
    workdir: Path
    config: Path
    server: NatsServer | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def healthy(self) -> bool:
        try:
            response = httpx.get(f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=1.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


@dataclass
class NatsCluster:
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Every node, comma-separated: what NATS_URL holds on a cluster."""
        return ",".join(node.url for node in self.nodes)

    def start(self, node: ClusterNode) -> None:
        node.server = start_nats(node.workdir, config=node.config, port=node.client_port)

    def kill(self, node: ClusterNode) -> None:
        assert node.server is not None
        node.server.kill()

    def wait_healthy(self, *, timeout: float = 60.0) -> None:
        wait_until(
            lambda: all(node.healthy() for node in self.nodes),
            timeout=timeout,
            interval=0.1,
            what="every NATS node healthy (JetStream meta leader, streams current)",
        )

    def stop(self) -> None:
        for node in self.nodes:
            if node.server is not None:
                node.server.stop()


def node_config(base: str, node: ClusterNode, peers: list[ClusterNode]) -> str:
    """The generated users/permissions (`base`) plus this node's cluster settings. JSON values
    are valid nats-server configuration syntax."""
    routes = [f"nats-route://127.0.0.1:{peer.route_port}" for peer in peers]
    cluster = {"name": CLUSTER_NAME, "listen": f"127.0.0.1:{node.route_port}", "routes": routes}
    return (
        f"{base}\n"
        f"server_name: {json.dumps(node.name)}\n"
        f"http: {json.dumps(f'127.0.0.1:{node.monitor_port}')}\n"
        f"cluster {json.dumps(cluster, indent=2)}\n"
    )


def start_nats_cluster(workdir: Path, server_config: Path, *, size: int = 3) -> NatsCluster:
    """`size` nodes on free loopback ports, each with the users of `server_config` (the
    `nats.conf` that `onbehalf nats init` writes); returns once every node is healthy."""
    base = server_config.read_text()
    # Nine ports picked before any is bound: each pick must avoid the ones already handed out,
    # or a node's client port can be another's route port (seen once in CI: "address in use").
    picked: list[int] = []

    def pick() -> int:
        picked.append(free_port(taken=picked))
        return picked[-1]

    nodes = [
        ClusterNode(
            name=f"nats-{n}",
            client_port=pick(),
            route_port=pick(),
            monitor_port=pick(),
            workdir=workdir / f"nats-{n}",
            config=workdir / f"nats-{n}" / "node.conf",
        )
        for n in range(size)
    ]
    cluster = NatsCluster(nodes)
    try:
        for node in nodes:
            node.workdir.mkdir(parents=True, exist_ok=True)
            node.config.write_text(node_config(base, node, nodes))
            node.config.chmod(0o600)  # it holds the users' public keys and permissions
            cluster.start(node)
        cluster.wait_healthy()
    except BaseException:
        cluster.stop()
        raise
    return cluster
