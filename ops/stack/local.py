"""`pantau stack up | down | status`: the private broker and database under one state directory.

Layout of the state directory (default ``.pantau/``)::

    stack.json        ports, pids, each service's URLs (read by the other commands; mode 0600)
    secrets.json      the generated passwords (mode 0600, see ops.secretstore)
    env               `export PANTAU_STATE_DIR=...` for a shell
    mosquitto/        config, password and ACL files, persistence, log, pid
    postgres/         data directory, generated pantau.conf, log

The broker refuses anonymous clients; every service has its own account (ops.mqttauth), and
the operator account ``pantau-admin`` (all topics) is for tests, benchmarks and debugging on this
machine only. The database authenticates with SCRAM; each service has its own login
(pantau.db.roles) and none of them is a superuser.

``up`` is idempotent; ``down`` stops exactly the processes whose pids it recorded, after checking
that each pid still runs our config (never a recycled pid, never the system's servers).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ops import credentials, mqttauth
from ops.credentials import write_private
from ops.secretstore import SecretStore
from ops.settings import StackSettings
from ops.stack import install
from ops.stack.mosquitto import Broker, BrokerConfig
from ops.stack.postgres import Cluster, ClusterConfig
from ops.stack.processes import ServiceUser, ensure_reachable, free_port, port_open
from pantau.db import roles
from pantau.errors import ConfigError
from pantau.masking import mask_url

logger = logging.getLogger(__name__)

STATE_FILE = "stack.json"


@dataclass(frozen=True)
class StackState:
    """What ``stack.json`` records."""

    state_dir: str
    mqtt_port: int
    pg_port: int
    mosquitto_pid: int | None
    postgres_pid: int | None
    database_url: str  # the superuser's: administration, tests and benchmarks only
    mqtt_url: str  # the operator account's (all topics): tests, benchmarks, debugging only
    # Per service (owner, ingest, process, api, grafana / ingest, process, simulator): what
    # each command uses when PANTAU_DATABASE_URL / PANTAU_MQTT_URL are not set.
    database_urls: dict[str, str] = field(default_factory=dict)
    mqtt_urls: dict[str, str] = field(default_factory=dict)

    def env_lines(self) -> list[str]:
        # No URL here: each command finds its own service's URL in stack.json, so that nothing
        # run from this shell connects as the superuser or the operator account.
        return [f"export PANTAU_STATE_DIR={self.state_dir}"]


DATABASE = "pantau"
DB_GROUP = "database"
DB_LOGINS = ("owner", *(login.service for login in roles.LOGINS))
MQTT_SERVICES = {
    "ingest": mqttauth.INGEST,
    "process": mqttauth.PROCESS,
    "simulator": mqttauth.SIMULATOR,
}


class LocalStack:
    """One broker and one database cluster under ``settings.state_dir``."""

    def __init__(self, settings: StackSettings, *, timescaledb: bool = True) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.timescaledb = timescaledb

    # -- the parts ---------------------------------------------------------------------------

    def _broker(self, toolchain: install.Toolchain, port: int) -> Broker:
        assert toolchain.mosquitto is not None
        tls = self.settings
        config = BrokerConfig(
            port=port,
            directory=self.state_dir / "mosquitto",
            max_inflight=self.settings.max_inflight,
            tls_port=tls.tls_port or None,
            tls_certfile=tls.tls_certfile,
            tls_keyfile=tls.tls_keyfile,
            tls_cafile=tls.tls_cafile,
        )
        return Broker(toolchain.mosquitto, config, ServiceUser.for_service("mosquitto"))

    def _cluster(self, toolchain: install.Toolchain, port: int) -> Cluster:
        assert toolchain.pg_bindir is not None
        config = ClusterConfig(
            port=port,
            directory=self.state_dir / "postgres",
            timescaledb=self.timescaledb,
            fsync=self.settings.fsync,
            superuser_password=self.store().ensure(DB_GROUP, "superuser"),
        )
        return Cluster(toolchain.pg_bindir, config, ServiceUser.for_service("postgres"))

    def parts(self) -> tuple[Broker, Cluster]:
        """The broker and the cluster of the running stack (fault drills stop and start them)."""
        state = self.read_state()
        if state is None:
            raise ConfigError(f"no local stack in {self.state_dir}", "run `pantau stack up`")
        toolchain = install.detect()
        return self._broker(toolchain, state.mqtt_port), self._cluster(toolchain, state.pg_port)

    def store(self) -> SecretStore:
        return SecretStore(self.state_dir)

    def read_state(self) -> StackState | None:
        try:
            return StackState(**json.loads((self.state_dir / STATE_FILE).read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    # -- commands ----------------------------------------------------------------------------

    def up(self) -> StackState:
        """Start whatever is not running yet (installing missing servers if allowed)."""
        toolchain = install.ensure_installed(self.settings.install)
        previous = self.read_state()
        # Keep the ports of a stack that already runs, even if the defaults changed since.
        mqtt_port = previous.mqtt_port if previous else self.settings.mqtt_port
        pg_port = previous.pg_port if previous else self.settings.pg_port
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o755)
        broker = self._broker(toolchain, mqtt_port)
        cluster = self._cluster(toolchain, pg_port)
        for user in {broker.user, cluster.user}:
            ensure_reachable(self.state_dir, user)
        if broker.pid() is None:
            self._check_port_free(mqtt_port, "PANTAU_STACK_MQTT_PORT")
        if cluster.pid() is None:
            self._check_port_free(pg_port, "PANTAU_STACK_PG_PORT")
        store = self.store()
        broker.write_accounts(credentials.local_accounts(store))
        broker_was_running = broker.pid() is not None
        mosquitto_pid = broker.start()
        try:
            postgres_pid = cluster.start()
            db_passwords = {name: store.ensure(DB_GROUP, name) for name in DB_LOGINS}
            for line in roles.bootstrap(cluster.config.url("postgres"), DATABASE, db_passwords):
                logger.debug("bootstrap: %s", line)
        except BaseException:
            # Leave nothing behind that no state file records.
            if not broker_was_running:
                broker.stop()
            raise
        mqtt_passwords = credentials.local_service_passwords(store)
        host = f"127.0.0.1:{mqtt_port}"
        state = StackState(
            state_dir=str(self.state_dir),
            mqtt_port=mqtt_port,
            pg_port=pg_port,
            mosquitto_pid=mosquitto_pid,
            postgres_pid=postgres_pid,
            database_url=cluster.config.url(),
            mqtt_url=f"mqtt://{mqttauth.ADMIN}:{mqtt_passwords[mqttauth.ADMIN]}@{host}",
            database_urls=self._database_urls(cluster.config.url(), db_passwords),
            mqtt_urls={
                service: f"mqtt://{account}:{mqtt_passwords[account]}@{host}"
                for service, account in MQTT_SERVICES.items()
            },
        )
        self._write_state(state)
        return state

    @staticmethod
    def _database_urls(admin_url: str, passwords: dict[str, str]) -> dict[str, str]:
        urls = {"owner": roles.login_url(admin_url, roles.OWNER, passwords["owner"], DATABASE)}
        for login in roles.LOGINS:
            urls[login.service] = roles.login_url(
                admin_url, login.name, passwords[login.service], DATABASE
            )
        urls["process"] = urls["ingest"]  # the processing job writes as the ingest role
        return urls

    def write_devices(self, root: str, devices: list[mqttauth.Device], *, rotate: bool) -> str:
        """Give ``devices`` broker accounts (keeping their passwords unless ``rotate``), rewrite
        the broker's files and reload it. Returns a summary line."""
        store = self.store()
        _, _, previous = credentials.local_devices(store)
        generated = credentials.generate(
            root, devices, previous, credentials.local_service_passwords(store), rotate=rotate
        )
        credentials.save_local_devices(store, root, devices, generated.device_passwords)
        state = self.read_state()
        toolchain = install.detect()
        port = state.mqtt_port if state else self.settings.mqtt_port
        if toolchain.mosquitto is not None:
            self._broker(toolchain, port).write_accounts(generated.accounts)
        return (
            f"{len(devices)} device accounts ({generated.new_devices} new, "
            f"{generated.removed_devices} removed{', all rotated' if rotate else ''}), "
            f"topic root {root}"
        )

    def down(self) -> list[str]:
        """Stop what ``up`` started; returns what was stopped."""
        state = self.read_state()
        if state is None:
            return []
        toolchain = install.detect()
        stopped = []
        if toolchain.mosquitto and self._broker(toolchain, state.mqtt_port).stop():
            stopped.append(f"mosquitto (pid {state.mosquitto_pid})")
        if toolchain.pg_bindir and self._cluster(toolchain, state.pg_port).stop():
            stopped.append(f"postgres (pid {state.postgres_pid})")
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        (self.state_dir / "env").unlink(missing_ok=True)
        return stopped

    def status(self) -> dict[str, str]:
        """One line per part: what runs where."""
        state = self.read_state()
        if state is None:
            return {"stack": f"not running (no {STATE_FILE} in {self.state_dir})"}
        toolchain = install.detect()
        out = {}
        if toolchain.mosquitto:
            pid = self._broker(toolchain, state.mqtt_port).pid()
            out["mosquitto"] = (
                f"running, pid {pid}, {mask_url(state.mqtt_url)}"
                if pid
                else f"stopped (port {state.mqtt_port})"
            )
        if toolchain.pg_bindir:
            pid = self._cluster(toolchain, state.pg_port).pid()
            out["postgres"] = (
                f"running, pid {pid}, {mask_url(state.database_url)}"
                if pid
                else f"stopped (port {state.pg_port})"
            )
        return out

    def _check_port_free(self, port: int, variable: str) -> None:
        if port_open(port):
            raise ConfigError(
                f"port {port} is already in use by another program",
                f"choose another port with {variable}=<port>",
            )

    def _write_state(self, state: StackState) -> None:
        write_private(self.state_dir / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")
        (self.state_dir / "env").write_text("\n".join(state.env_lines()) + "\n")


@contextmanager
def temporary_stack(prefix: str, *, fsync: bool = False) -> Iterator[LocalStack]:
    """A running stack on free ports in a new directory, stopped and removed on exit.

    For tests, benchmarks and fault drills. The directory is made enterable (mode 755) because
    the servers run as their own unprivileged users when started as root.
    """
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    state_dir.chmod(0o755)
    local = LocalStack(settings_for(state_dir, free_port(), free_port(), fsync=fsync))
    try:
        local.up()
        yield local
    finally:
        local.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def settings_for(state_dir: Path, mqtt_port: int, pg_port: int, *, fsync: bool) -> StackSettings:
    """Stack settings for a given directory and ports (tests and benchmarks)."""
    if not state_dir.is_absolute():
        raise ConfigError(f"state dir must be absolute, got {state_dir}", "pass an absolute path")
    return StackSettings(
        state_dir=state_dir, mqtt_port=mqtt_port, pg_port=pg_port, fsync=fsync, install=True
    )


def service_urls(state_dir: Path, db_service: str, mqtt_service: str) -> tuple[str, str] | None:
    """The database and broker URLs the local stack in ``state_dir`` made for these services
    (see :class:`StackState`), or ``None`` when no stack state is there."""
    path = state_dir / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"the local stack state {path} is corrupt ({exc})",
            "run `pantau stack down` and `pantau stack up` again",
        ) from exc
    database_url = state.get("database_urls", {}).get(db_service) or state["database_url"]
    mqtt_url = state.get("mqtt_urls", {}).get(mqtt_service) or state["mqtt_url"]
    return str(database_url), str(mqtt_url)
