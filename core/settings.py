"""One frozen settings object per process, read once from ``LEADLOOM_*`` and ``.env``.

Defaults give the embedded setup (local broker on 127.0.0.1:9092, embedded ClickHouse
under ``data_dir``); nothing needs configuring for the demo or the tests. Every field is
one ``LEADLOOM_<FIELD>`` variable, documented in README.md ("Configuration"; a unit test
keeps the two in step). Size and partition defaults come from ``schemas.registry``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.registry import KAFKA_WIRE_MAX_BYTES, MAX_EVENT_BYTES, TopicNames

ENV_PREFIX = "LEADLOOM_"
ENV_FILE = ".env"
MASK = "**********"  # what pydantic shows for a SecretStr, used for every masked value


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "leadloom"


class Settings(BaseSettings):
    """Process-wide configuration. Frozen: pass it down, never mutate it."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=ENV_FILE, extra="ignore", frozen=True
    )

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated"
    )
    namespace: str = Field(
        "leadloom",
        pattern=r"^[a-z][a-z0-9-]{0,40}$",
        description="prefix of every topic, consumer group and the Faust app id",
    )
    data_dir: Path = Field(Path("data"), description="embedded store, pid files, ground truth")
    clickhouse_dsn: str = Field(
        "", description="chdb:///path (embedded, default under data_dir) or http(s)://host:port"
    )
    clickhouse_database: str = Field("leadloom", description="database of every table")
    clickhouse_cluster: str = Field(
        "", description="server only: run migrations ON CLUSTER with replicated engines"
    )
    clickhouse_password: SecretStr = Field(
        SecretStr(""), description="ClickHouse server password (else the DSN's); always masked"
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir, description="Kafka jars resolved from Maven Central"
    )
    kafka_version: str = Field("4.1.2", description="Kafka release run by 'leadloom infra up'")
    log_level: str = Field("WARNING", description="Python log level of every process")
    sink_batch_max: int = Field(20_000, ge=1, description="rows per insert at most")
    worker_batch_max: int = Field(
        2000, ge=1, description="events a stream worker agent takes per batch at most (a"
        " message counts its lines; one larger than this is a batch alone)"
    )
    worker_batch_within_ms: int = Field(
        50, ge=1, description="max wait of a stream worker agent for a fuller batch"
    )
    worker_linger_ms: int = Field(5, ge=0, description="stream workers' producer linger")
    producer_linger_ms: int = Field(
        5, ge=0, description="linger of the command's producers (paced publishing)"
    )
    bulk_linger_ms: int = Field(
        100, ge=0,
        description="linger of unthrottled bulk publishing (simulate, bench): fewer, fuller"
        " requests, fewer wake-ups of kafka-python's pure-Python sender thread",
    )
    bulk_batch_bytes: int = Field(
        1024 * 1024, ge=16 * 1024,
        description="per-partition batch size of bulk publishing (producers otherwise 256 KiB)",
    )
    sink_linger_ms: int = Field(100, ge=0, description="max wait before flushing a batch")
    max_message_bytes: int = Field(
        MAX_EVENT_BYTES, ge=1024, description="larger events dead-letter as 'oversized'"
    )
    kafka_wire_max_bytes: int = Field(
        KAFKA_WIRE_MAX_BYTES, ge=1024 * 1024,
        description="largest Kafka message anywhere: the local brokers' message.max.bytes and"
        " every producer's max_request_size (oversized events must reach the workers)",
    )
    worker_store: str = Field("memory://", description="Faust table store; changelog-backed")
    grafana_token: SecretStr = Field(
        SecretStr(""), description="Grafana service account token for 'leadloom dashboards"
        " push --org' (role Admin; one org, the token's); always masked",
    )
    grafana_admin_user: str = Field(
        "", description="Grafana server admin for 'leadloom dashboards push' (creates the"
        " orgs, reaches every org)",
    )
    grafana_admin_password: SecretStr = Field(
        SecretStr(""), description="that admin's password; always masked",
    )
    dashboard_language: Literal["zh-en", "en"] = Field(
        "zh-en", description="dashboard titles and panel names: Chinese first then English"
        " ('zh-en') or English only ('en')",
    )

    http_host: str = Field(
        "127.0.0.1", description="where 'leadloom run' serves ClickHouse's HTTP interface:"
        " a loopback address only (127.0.0.0/8, ::1, localhost)",
    )
    http_port: int = Field(
        18123, ge=0, le=65535,
        description="port of ClickHouse's HTTP interface of 'leadloom run' (0: any free port)",
    )

    @field_validator("http_host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        # The interface answers every configured user; beyond this host it would need TLS
        # and a network policy the project does not ship: loopback only.
        if host == "localhost":
            return host
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"http_host must be a loopback address, not {host!r}")
        return host

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.namespace)

    @property
    def resolved_dsn(self) -> str:
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def embedded(self) -> bool:
        return self.resolved_dsn.startswith("chdb://")

    @property
    def faust_app_id(self) -> str:
        return f"{self.namespace}-streams"

    @property
    def sink_group(self) -> str:
        return f"{self.namespace}-sink"

    def dump(self) -> dict[str, object]:
        """Every setting by field name, JSON-ready, for logs and ``leadloom config``.

        Secrets stay masked: ``clickhouse_password`` and any password (or token) embedded
        in ``clickhouse_dsn``. Never pass the result to a child process (see
        :func:`settings_env`)."""
        values = self.model_dump(mode="json")
        values["clickhouse_password"] = MASK if self.clickhouse_password else ""
        values["grafana_token"] = MASK if self.grafana_token else ""
        values["grafana_admin_password"] = MASK if self.grafana_admin_password else ""
        values["clickhouse_dsn"] = mask_dsn(self.clickhouse_dsn)
        return values

    def sources(self) -> dict[str, str]:
        """Where each setting came from: "env" (a ``LEADLOOM_*`` variable), ".env" (the
        file in the working directory), "code" (passed to the constructor) or "default".
        Process environment wins over ``.env``, as it does when the settings are read."""
        env = {k.upper() for k in os.environ}
        dotenv = ({k.upper() for k in dotenv_values(ENV_FILE)}
                  if Path(ENV_FILE).is_file() else set())
        found = {}
        for name in type(self).model_fields:
            var = f"{ENV_PREFIX}{name.upper()}"
            found[name] = ("env" if var in env else ".env" if var in dotenv
                           else "code" if name in self.model_fields_set else "default")
        return found


_SECRET_PARAMS = frozenset({"password", "pass", "pwd", "secret", "token", "access_token",
                            "api_key", "key"})


def mask_dsn(dsn: str) -> str:
    """``dsn`` with the password of its user info and any secret-looking query parameter
    (``password=``, ``token=``...) replaced by the mask, the rest as written; anything
    unparsable is masked whole rather than risk showing a secret."""
    if not dsn:
        return dsn
    try:
        parts = urlsplit(dsn)
        masked = dsn
        if parts.password is not None:
            userinfo, _, hostport = parts.netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            masked = masked.replace(parts.netloc, f"{user}:{MASK}@{hostport}", 1)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
            )
            masked = masked.replace(f"?{parts.query}", f"?{query}", 1)
        return masked
    except ValueError:
        return MASK


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """``LEADLOOM_*`` variables that rebuild ``settings`` in a child process."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if name in ("grafana_token", "grafana_admin_user", "grafana_admin_password"):
            continue  # only the push uses them, in the command's own process
        if name == "clickhouse_password":
            value = settings.clickhouse_password.get_secret_value()
        elif name in ("data_dir", "cache_dir"):
            value = Path(value).resolve()  # the child may run elsewhere
        env[f"LEADLOOM_{name.upper()}"] = str(value)
    return env
