"""Real Redis deployments for the scale-out tests: Sentinel, Cluster, TLS with ACL users.

All run Debian's redis-server 7.0 (/usr/bin/redis-server), which has TLS, Sentinel and Cluster
built in, on loopback ports of their own, and are torn down by the tests' fixtures.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot
from redis_servers import RedisServer, answers, free_port
from waiting import eventually

DEBIAN_REDIS = "/usr/bin/redis-server"
DEBIAN_REDIS_CLI = "/usr/bin/redis-cli"

requires_debian_redis = pytest.mark.skipif(
    not Path(DEBIAN_REDIS).exists(),
    reason=f"needs Debian's {DEBIAN_REDIS} (7.0: TLS, Sentinel, Cluster); apt-get install redis-server",
)

#: Failover and Cluster formation take seconds on two busy cores.
SLOW = 60.0


class SentinelDeployment:
    """A password-protected master, one replica, and three sentinels watching them (quorum 2).

    With `tls`, every one of them also serves TLS (certificates from a CA made here), replicates
    and monitors over it, and the URL reaches them only through TLS ports; the plain ports stay
    for the test's own setup.
    """

    SERVICE = "sollol-master"
    PASSWORD = "sentinel-test-pw"

    def __init__(self, *, tls: bool = False) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="sollol-otel-sentinel-"))
        self._tls: list[str] = []
        if tls:
            _make_certificates(self._dir)
            files = {name: str(self._dir / name) for name in ("server.crt", "server.key", "ca.crt")}
            self._tls = [
                "--tls-cert-file", files["server.crt"], "--tls-key-file", files["server.key"],
                "--tls-ca-cert-file", files["ca.crt"], "--tls-auth-clients", "no", "--tls-replication", "yes",
            ]  # fmt: skip
        auth = ["--requirepass", self.PASSWORD, "--masterauth", self.PASSWORD]
        self.master = self._server(auth)
        self.link = LinkProxy(self._port(self.master))  # the replication link, to cut as a partition would
        self.replica = self._server([*auth, "--replicaof", "127.0.0.1", str(self.link.port)])
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._tls_ports = {port: free_port() for port in self.sentinel_ports}
        self._sentinels = [self._start_sentinel(port) for port in self.sentinel_ports]
        eventually(
            self._watching_everything, timeout=SLOW, what="sentinels to see the replica and each other"
        )

    def _server(self, args: list[str]) -> RedisServer:
        tls = ["--tls-port", str(free_port()), *self._tls] if self._tls else []
        return RedisServer(args=[*args, *tls], binary=DEBIAN_REDIS).start()

    def _port(self, server: RedisServer) -> int:
        """The port clients and the other servers use: the TLS one when there is one."""
        return int(server.args[server.args.index("--tls-port") + 1]) if self._tls else server.port

    @property
    def url(self) -> str:
        if self._tls:
            hosts = ",".join(f"localhost:{self._tls_ports[port]}" for port in self.sentinel_ports)
            ca = self._dir / "ca.crt"
            return f"rediss+sentinel://:{self.PASSWORD}@{hosts}/{self.SERVICE}?ssl_ca_certs={ca}"
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://:{self.PASSWORD}@{hosts}/{self.SERVICE}"

    def _start_sentinel(self, port: int) -> subprocess.Popen[bytes]:
        config = self._dir / f"sentinel-{port}.conf"  # Sentinel rewrites its file: one each
        tls = " ".join(self._tls).replace(" --", "\n").removeprefix("--")
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self._dir}\n"
            + (f"tls-port {self._tls_ports[port]}\n{tls}\n" if self._tls else "")
            + f"sentinel monitor {self.SERVICE} 127.0.0.1 {self._port(self.master)} 2\n"
            f"sentinel auth-pass {self.SERVICE} {self.PASSWORD}\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
            f"sentinel failover-timeout {self.SERVICE} 10000\n"
        )
        process = subprocess.Popen(
            [DEBIAN_REDIS, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        eventually(lambda: answers(port), what=f"sentinel on {port}")
        return process

    def add_sentinel(self) -> tuple[int, subprocess.Popen[bytes]]:
        """One more sentinel (its port and process), once it knows the replica and the others."""
        port = free_port()
        self.sentinel_ports.append(port)
        self._tls_ports[port] = free_port()
        process = self._start_sentinel(port)
        self._sentinels.append(process)
        eventually(self._watching_everything, timeout=SLOW, what="the new sentinel to see everything")
        return port, process

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[index], decode_responses=True)

    def _watching_everything(self) -> bool:
        for index in range(len(self.sentinel_ports)):
            state = self.sentinel(index).sentinel_master(self.SERVICE)
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < len(self.sentinel_ports) - 1:
                return False
        return self.replica_client().info("replication")["master_link_status"] == "up"

    def replica_client(self) -> redis.Redis:
        return redis.Redis(port=self.replica.port, password=self.PASSWORD)

    def wait_for_promotion(self) -> None:
        """Return once every sentinel names the replica as the master, and it says it is one."""
        replica = self._port(self.replica)
        eventually(
            lambda: (
                all(
                    int(self.sentinel(i).sentinel_get_master_addr_by_name(self.SERVICE)[1]) == replica
                    for i in range(3)
                )
                and self.replica_client().info("replication")["role"] == "master"
            ),
            timeout=SLOW,
            interval=0.1,
            what="the replica to be promoted",
        )

    def close(self) -> None:
        for process in self._sentinels:
            process.kill()
            process.wait(5)
        self.replica.close()
        self.link.close()
        self.master.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class LinkProxy:
    """A TCP relay to a local port that can be cut: open connections are closed, new ones refused."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: list[socket.socket] = []
        self._cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                if self._cut.is_set():
                    raise ConnectionRefusedError("cut")
                upstream = socket.create_connection(("127.0.0.1", self._target))
            except OSError:  # cut, or the target is gone (a killed master): the replica retries
                client.close()
                continue
            self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._cut.set()
        for end in self._open:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut()
        self._listener.close()


class ClusterDeployment:
    """Three masters sharing the 16384 slots, made with `redis-cli --cluster create`."""

    def __init__(self) -> None:
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ]
        self.nodes = [
            RedisServer(args=[*args, "--cluster-port", str(free_port())], binary=DEBIAN_REDIS).start()
            for _ in range(3)
        ]  # the bus port named: the default (port + 10000) may be taken or past 65535
        subprocess.run(
            [
                DEBIAN_REDIS_CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=SLOW,
        )
        eventually(self._ok_everywhere, timeout=SLOW, interval=0.1, what="cluster_state:ok on every node")

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port)

    def _ok_everywhere(self) -> bool:
        return all(self.client(n.port).cluster("info")["cluster_state"] == "ok" for n in self.nodes)

    def owner_port(self, key: str) -> int:
        """The port of the master that holds `key`'s slot."""
        slot = key_slot(key.encode())
        for start, end, (_, port, *_), *_ in self.client(self.nodes[0].port).execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(port)
        raise AssertionError(f"no node serves slot {slot}")

    def other_port(self, key: str) -> int:
        """A node that does not hold `key`: a plain URL to it meets MOVED at once."""
        owner = self.owner_port(key)
        return next(n.port for n in self.nodes if n.port != owner)

    def node_id(self, port: int) -> str:
        return str(self.client(port).execute_command("CLUSTER MYID").decode())

    def move_slot(self, key: str, to_port: int) -> None:
        """Migrate `key`'s slot (with every key in it: the stream and the history indexer's lease keys)
        to another master, as a resharding does."""
        slot, source = key_slot(key.encode()), self.owner_port(key)
        source_client, target_client = self.client(source), self.client(to_port)
        source_id, target_id = self.node_id(source), self.node_id(to_port)
        target_client.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
        source_client.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        while keys := source_client.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
            source_client.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
        for node in self.nodes:
            self.client(node.port).execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class TlsRedis:
    """A redis-server speaking TLS only on its TLS port, certificates from a CA made here, an ACL user.

    The plain port stays for the test's own setup; the default user needs a password there too.
    """

    USER = "sollol"
    PASSWORD = "tls-acl-pw"
    ADMIN_PASSWORD = "admin-pw"

    def __init__(self) -> None:
        self.certs = Path(tempfile.mkdtemp(prefix="sollol-otel-tls-"))
        _make_certificates(self.certs)
        self.tls_port = free_port()
        self.server = RedisServer(
            args=[
                "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(self.certs / "server.crt"),
                "--tls-key-file", str(self.certs / "server.key"),
                "--tls-ca-cert-file", str(self.certs / "ca.crt"),
                "--tls-auth-clients", "no",
                "--requirepass", self.ADMIN_PASSWORD,
                # The README's ACL for sollol-otel, no more: streams, PUBLISH, INFO (Cluster
                # detection), MEMORY USAGE (stats), on sollol:* keys and channels.
                "--user", self.USER, "on", f">{self.PASSWORD}", "~sollol:*", "&sollol:*", "-@all",
                "+@stream", "+publish", "+ping", "+multi", "+exec", "+info", "+memory|usage",
            ],
            binary=DEBIAN_REDIS,
        ).start()  # fmt: skip

    @property
    def url(self) -> str:
        ca = self.certs / "ca.crt"
        return f"rediss://{self.USER}:{self.PASSWORD}@localhost:{self.tls_port}/0?ssl_ca_certs={ca}"

    def admin(self) -> redis.Redis:
        return redis.Redis(port=self.server.port, password=self.ADMIN_PASSWORD)

    def close(self) -> None:
        self.server.close()
        shutil.rmtree(self.certs, ignore_errors=True)


def _make_certificates(folder: Path) -> None:
    """A private CA and a server certificate for `localhost` signed by it, with openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sollol-otel test CA",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
