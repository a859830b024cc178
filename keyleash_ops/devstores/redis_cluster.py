"""A local Redis Cluster of several redis-server processes, formed without redis-cli
(CLUSTER ADDSLOTS / SET-CONFIG-EPOCH / MEET / REPLICATE)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from keyleash_ops.devstores.processes import (
    CLUSTER_BUS_OFFSET,
    STANDARD_PORTS,
    DevStoreError,
    ManagedServer,
    find_free_port,
    port_free,
)
from keyleash_ops.devstores.redis import RedisServer, find_redis


def _redis_call(port: int, *args: str) -> bytes | None:
    """One command over RESP, for a status or bulk reply (its payload); None on any failure."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(request.encode())
            reply = b""
            while b"\r\n" not in reply or (
                reply.startswith(b"$") and len(reply) < _bulk_end(reply)
            ):
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                reply += chunk
    except OSError:
        return None
    header, _, rest = reply.partition(b"\r\n")
    if header.startswith(b"+"):
        return header[1:]
    if header.startswith(b"$") and header != b"$-1":
        return rest[: int(header[1:])]
    return None


def _bulk_end(reply: bytes) -> int:
    header = reply.split(b"\r\n", 1)[0]
    length = int(header[1:])
    return len(header) + 2 + (length + 2 if length >= 0 else 0)


def _cluster_info(port: int) -> dict[str, str]:
    raw = _redis_call(port, "CLUSTER", "INFO") or b""
    pairs = (line.split(":", 1) for line in raw.decode().splitlines() if ":" in line)
    return {name: value.strip() for name, value in pairs}


def _claim_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _attempt in range(200):
        port = find_free_port()
        bus = port + CLUSTER_BUS_OFFSET
        if bus < 65536 and bus not in STANDARD_PORTS and port_free(bus):
            return port
    raise DevStoreError("found no free port whose port + 10000 is free too, for a cluster node")


@dataclass(eq=False)
class RedisClusterServer(ManagedServer):
    """A local Redis Cluster: primaries (and replicas if asked), each its own redis-server
    child with `cluster-enabled yes` and no persistence. `url` names the first node: clients
    seeded with it discover the others. The slot map lives in each node's nodes.conf, so nodes
    come back into the same cluster after a kill and restart (empty: their data is gone)."""

    nodes: list[RedisServer] = field(default_factory=list)
    ready_timeout: float = 30.0

    def stop(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            node.stop(timeout)

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def is_running(self) -> bool:
        return all(node.is_running() for node in self.nodes)

    def restart(self) -> None:
        for node in self.nodes:
            node.restart()
        self.wait_until_ok()

    def _launch(self) -> None:
        for node in self.nodes:
            if not node.is_running():
                node._launch()
        self.wait_until_ok()

    def wait_until_ok(self) -> None:
        """Until every node reports cluster_state:ok, all slots served and every node known."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            infos = [_cluster_info(node.port) for node in self.nodes]
            if all(
                info.get("cluster_state") == "ok"
                and info.get("cluster_slots_ok") == "16384"
                and info.get("cluster_known_nodes") == str(len(self.nodes))
                for info in infos
            ):
                return
            if time.monotonic() > deadline:
                states = ", ".join(
                    f"{node.port}: {info.get('cluster_state', 'no answer')}"
                    for node, info in zip(self.nodes, infos, strict=True)
                )
                raise DevStoreError(f"the Redis Cluster did not become ok ({states})")
            time.sleep(0.05)


def start_redis_cluster(
    data_dir: Path, *, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 15000
) -> RedisClusterServer:
    """Start a Redis Cluster of `primaries` nodes on 127.0.0.1 (free ports), for tests: no
    persistence. Each node gets data_dir/node-PORT; the cluster is formed as
    `redis-cli --cluster create` would (no redis-cli needed) and returned once every node says
    cluster_state:ok. With `replicas`, each primary gets that many replicas, which take over
    when it fails (after `node_timeout_ms`); `nodes` lists the primaries first."""
    binary = find_redis()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    cluster = RedisClusterServer(name="redis-cluster", url="", port=0, data_dir=data_dir)
    try:
        for _ in range(primaries * (1 + replicas)):
            cluster.nodes.append(_cluster_node(binary, data_dir, node_timeout_ms))
            cluster.nodes[-1]._launch()
        cluster.url, cluster.port = cluster.nodes[0].url, cluster.nodes[0].port
        ports = [node.port for node in cluster.nodes]
        _create_cluster(ports[:primaries])
        for index, port in enumerate(ports[primaries:]):
            _cluster_command(ports[0], "CLUSTER", "MEET", "127.0.0.1", str(port))
            _replicate(port, ports[index % primaries], cluster.ready_timeout)
        cluster.wait_until_ok()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _replicate(replica: int, primary: int, timeout: float) -> None:
    """Makes `replica` a replica of `primary`, once it has learnt of it by gossip."""
    primary_id = (_redis_call(primary, "CLUSTER", "MYID") or b"").decode()
    deadline = time.monotonic() + timeout
    while _redis_call(replica, "CLUSTER", "REPLICATE", primary_id) != b"OK":
        if time.monotonic() > deadline:
            raise DevStoreError(f"redis on port {replica} would not replicate port {primary}")
        time.sleep(0.05)


def _cluster_node(binary: Path, data_dir: Path, node_timeout_ms: int) -> RedisServer:
    port = _claim_cluster_port()
    node = RedisServer(
        name="redis-cluster-node",
        url=f"redis://127.0.0.1:{port}/0",
        port=port,
        data_dir=data_dir / f"node-{port}",
        _binary=binary,
        _persistent=False,
        _extra_args=(
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", str(node_timeout_ms)),
        ),
    )
    node.data_dir.mkdir()
    return node


SLOTS = 16384


def _create_cluster(ports: list[int]) -> None:
    """The slots split evenly over the nodes (no replicas), each node with its own config epoch,
    then every node introduced to the first: what `redis-cli --cluster create` does."""
    for index, port in enumerate(ports):
        first, end = SLOTS * index // len(ports), SLOTS * (index + 1) // len(ports)
        _cluster_command(port, "CLUSTER", "ADDSLOTS", *(str(s) for s in range(first, end)))
        _cluster_command(port, "CLUSTER", "SET-CONFIG-EPOCH", str(index + 1))
    for port in ports[1:]:
        _cluster_command(ports[0], "CLUSTER", "MEET", "127.0.0.1", str(port))


def _cluster_command(port: int, *args: str) -> None:
    if _redis_call(port, *args) != b"OK":
        raise DevStoreError(f"redis on port {port} refused {' '.join(args[:2])}")
