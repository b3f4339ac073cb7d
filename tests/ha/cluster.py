"""`make ha`: three `dataintel serve` replicas, a worker and nginx on this machine, with the
production settings, on the machine's PostgreSQL (a database of our own) and a private
redis-server; everything the cluster writes lives under var/ha/.

    python -m tests.ha.cluster          # starts it, prints the address, Ctrl+C stops it

`tests/ha/failover.py` (`make ha-test`) drives the same `Cluster` while killing parts of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.ha.nginx import render_nginx_config

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATABASE = os.environ.get("DATAINTEL_HA_DATABASE", "dataintel_ha")
POSTGRES = os.environ.get("DATAINTEL_HA_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REPLICAS = 3
READY_SECONDS = 60.0
LOAD_EMAIL = "loadtest@dataintel.local"
LOAD_PASSWORD = "loadtest-password-not-secret"


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str, timeout: float = 2.0) -> tuple[int, dict[str, str]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)
    except (urllib.error.URLError, OSError):
        return 0, {}


def poll(condition: object, seconds: float, what: str) -> float:
    """Waits until ``condition()`` holds; returns the seconds it took; raises past the deadline."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > seconds:
            raise TimeoutError(f"not within {seconds:.0f}s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def nginx_binary() -> str | None:
    """Debian's nginx, wherever it is (sbin is not always on PATH)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


@dataclass
class Process:
    """One child process of the cluster, restartable with the same command."""

    name: str
    command: list[str]
    log: Path
    environment: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, seconds: float) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout=seconds)

    def stop(self, seconds: float = 40.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.terminate()
        try:
            return self.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(timeout=10)


@dataclass
class Cluster:
    """The replicas, the worker, nginx and the private Redis, under ``directory``."""

    directory: Path = REPO / "var" / "ha"
    replica_ports: list[int] = field(default_factory=list)
    nginx_port: int = 0
    redis_port: int = 0
    replicas: list[Process] = field(default_factory=list)
    extras: list[Process] = field(default_factory=list)
    redis: Process | None = None
    nginx: Process | None = None

    @property
    def origin(self) -> str:
        """The load balancer's address: what clients use."""
        return f"http://127.0.0.1:{self.nginx_port}"

    def replica_origin(self, index: int) -> str:
        return f"http://127.0.0.1:{self.replica_ports[index]}"

    def environment(self) -> dict[str, str]:
        """The production settings every replica and the worker run with."""
        secret_file = self.directory / "jwt-secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_hex(32))
        base = {k: v for k, v in os.environ.items() if not k.startswith("DATAINTEL_")}
        return {
            **base,
            "DATAINTEL_ENVIRONMENT": "production",
            "DATAINTEL_DATABASE_URL": f"{POSTGRES}/{DATABASE}".replace(
                "postgresql://", "postgresql+asyncpg://", 1
            ),
            "DATAINTEL_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "DATAINTEL_JWT_SECRET": secret_file.read_text().strip(),
            "DATAINTEL_AUTO_MIGRATE": "false",
            "DATAINTEL_AUTO_SEED": "false",
            "DATAINTEL_LOG_FORMAT": "json",
        }

    def start(self) -> None:
        """Starts everything and returns once nginx routes to every ready replica."""
        nginx = nginx_binary()
        if nginx is None:
            raise SystemExit("nginx is not installed: apt-get install -y nginx")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.redis_port = free_port()
        self.nginx_port = free_port()
        self.replica_ports = [free_port() for _ in range(REPLICAS)]
        self._start_redis()
        environment = self.environment()
        self._prepare_store(environment)
        for index, port in enumerate(self.replica_ports):
            serve = [str(BIN / "dataintel"), "serve", "--host", "127.0.0.1", "--port", str(port)]
            log = self.directory / f"replica-{index + 1}.log"
            self.replicas.append(Process(f"replica-{index + 1}", serve, log, environment))
        for replica in self.replicas:
            replica.start()
        worker = Process(
            "worker", [str(BIN / "dataintel"), "worker"], self.directory / "worker.log", environment
        )
        worker.start()
        self.extras.append(worker)
        upstreams = [f"127.0.0.1:{port}" for port in self.replica_ports]
        config = render_nginx_config(
            self.directory / "nginx", self.nginx_port, upstreams, expose_upstream=True
        )
        self.nginx = Process(
            "nginx",
            [nginx, "-p", str(config.parent), "-c", str(config)],
            self.directory / "nginx.log",
            dict(os.environ),
        )
        self.nginx.start()
        for index in range(REPLICAS):
            self.wait_ready(index)
        poll(lambda: _get(f"{self.origin}/lb-healthz")[0] == 200, READY_SECONDS, "nginx")
        (self.directory / "cluster.json").write_text(
            json.dumps(
                {
                    "origin": self.origin,
                    "replicas": [self.replica_origin(i) for i in range(REPLICAS)],
                    "redis": f"redis://127.0.0.1:{self.redis_port}/0",
                    "database": DATABASE,
                    "worker": True,
                },
                indent=2,
            )
        )

    def _start_redis(self) -> None:
        data = self.directory / "redis"
        data.mkdir(exist_ok=True)
        command = [
            "redis-server",
            "--port", str(self.redis_port),
            "--bind", "127.0.0.1",
            "--dir", str(data),
            "--save", "",
            "--appendonly", "no",
        ]  # fmt: skip
        self.redis = Process("redis", command, self.directory / "redis.log", dict(os.environ))
        self.redis.start()
        poll(lambda: _answers(self.redis_port), 10, "redis-server")

    def restart_redis(self) -> float:
        """Stops the private Redis (everything in it is lost) and starts it again."""
        assert self.redis is not None
        self.redis.stop()
        self.redis.start()
        return poll(lambda: _answers(self.redis_port), 10, "redis-server again")

    def _prepare_store(self, environment: dict[str, str]) -> None:
        asyncio.run(_create_database())
        # Migrations run once, here, as a deploy's migration job does; replicas never migrate.
        _dataintel(["db", "upgrade"], environment)
        if not asyncio.run(_seeded(environment["DATAINTEL_DATABASE_URL"])):
            _dataintel(["seed"], environment)
            _dataintel(["features", "materialize"], environment)
        result = subprocess.run(
            [str(BIN / "dataintel"), "users", "create", "--email", LOAD_EMAIL, "--role", "admin",
             "--password-stdin"],
            input=LOAD_PASSWORD + "\n", capture_output=True, text=True, env=environment,
            cwd=REPO, check=False,
        )  # fmt: skip
        if result.returncode != 0 and "exists" not in result.stderr:
            raise SystemExit(f"users create: {result.stderr.strip()}")

    def wait_ready(self, index: int) -> float:
        """Seconds until replica ``index`` answers /readyz with 200."""
        origin = self.replica_origin(index)
        return poll(
            lambda: _get(f"{origin}/readyz")[0] == 200, READY_SECONDS, f"replica {index + 1}"
        )

    def in_rotation(self, index: int) -> float:
        """Seconds until nginx sends a request to replica ``index`` (it is back in rotation)."""
        address = f"127.0.0.1:{self.replica_ports[index]}"

        def routed() -> bool:
            status, headers = _get(f"{self.origin}/healthz")
            return status == 200 and headers.get("X-Upstream-Addr", "").endswith(address)

        return poll(routed, READY_SECONDS, f"nginx routes to replica {index + 1}")

    def stop(self) -> None:
        """Stops everything this cluster started (never the machine's own services)."""
        # All at once: each replica drains for DATAINTEL_SHUTDOWN_DRAIN_SECONDS.
        for process in [*self.extras, *self.replicas]:
            process.signal(signal.SIGTERM)
        for process in [*self.extras, *self.replicas]:
            process.stop()
        if self.nginx is not None:
            self.nginx.signal(signal.SIGQUIT)
            self.nginx.stop(10)
        if self.redis is not None:
            self.redis.stop()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _dataintel(arguments: list[str], environment: dict[str, str]) -> None:
    result = subprocess.run(
        [str(BIN / "dataintel"), *arguments],
        capture_output=True, text=True, env=environment, cwd=REPO, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"dataintel {' '.join(arguments)}: {result.stderr.strip()}")


async def _create_database() -> None:
    """Creates our database when it is missing; never touches (or drops) any other."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = POSTGRES.replace("postgresql://", "postgresql+asyncpg://", 1) + "/postgres"
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": DATABASE}
            )
            if not exists:
                await connection.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    finally:
        await engine.dispose()


async def _seeded(url: str) -> bool:
    from dataintel.settings import Settings
    from dataintel.store.engine import create_engine
    from dataintel.store.seed import is_seeded

    engine = create_engine(Settings(database_url=url).store)
    try:
        return await is_seeded(engine)
    finally:
        await engine.dispose()


def main() -> int:
    """`make ha`: start the cluster, print where it is, stop it on Ctrl+C or SIGTERM."""
    cluster = Cluster()
    stopping = False

    def stop(_signal: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        cluster.start()
        print(
            f"dataintel HA: {cluster.origin}/graphql (nginx) -> {REPLICAS} replicas"
            f" {', '.join(cluster.replica_origin(i) for i in range(REPLICAS))}, a worker;"
            f" Redis {cluster.redis_port}, PostgreSQL database {DATABASE}; logs in"
            f" {cluster.directory}. Ctrl+C stops it.\n"
            f"Load test it: make loadtest LOAD_HOST={cluster.origin} LOAD_ARGS=--no-account",
            flush=True,
        )
        while not stopping:
            time.sleep(0.2)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
