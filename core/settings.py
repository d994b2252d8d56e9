"""One frozen settings object per process, read once from ``LEADLOOM_*`` and ``.env``.

Defaults give the embedded setup (local broker on 127.0.0.1:9092, embedded ClickHouse
under ``data_dir``); nothing needs configuring for the demo or the tests.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.registry import TopicNames


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "leadloom"


class Settings(BaseSettings):
    """Process-wide configuration. Frozen: pass it down, never mutate it."""

    model_config = SettingsConfigDict(
        env_prefix="LEADLOOM_", env_file=".env", extra="ignore", frozen=True
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
    clickhouse_database: str = "leadloom"
    clickhouse_cluster: str = Field(
        "", description="server only: run migrations ON CLUSTER with replicated engines"
    )
    clickhouse_password: SecretStr = SecretStr("")
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    kafka_version: str = "4.1.2"
    log_level: str = "WARNING"
    sink_batch_max: int = Field(20_000, ge=1, description="rows per insert at most")
    worker_batch_max: int = Field(
        2000, ge=1, description="messages a stream worker agent takes per batch at most"
    )
    worker_batch_within_ms: int = Field(
        50, ge=1, description="max wait of a stream worker agent for a fuller batch"
    )
    worker_linger_ms: int = Field(5, ge=0, description="stream workers' producer linger")
    producer_linger_ms: int = Field(
        5, ge=0, description="linger of the command's producers (paced publishing)"
    )
    sink_linger_ms: int = Field(200, ge=0, description="max wait before flushing a batch")
    max_message_bytes: int = Field(64 * 1024, ge=1024, description="larger events dead-letter")
    kafka_wire_max_bytes: int = Field(
        4 * 1024 * 1024, ge=1024 * 1024,
        description="largest Kafka message anywhere: the local brokers' message.max.bytes and"
        " every producer's max_request_size (oversized events must reach the workers)",
    )
    worker_store: str = Field("memory://", description="Faust table store; changelog-backed")

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
        """Settings for logs and ``--help``: secrets stay masked."""
        return self.model_dump(mode="json")


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """``LEADLOOM_*`` variables that rebuild ``settings`` in a child process."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if name == "clickhouse_password":
            value = settings.clickhouse_password.get_secret_value()
        elif name in ("data_dir", "cache_dir"):
            value = Path(value).resolve()  # the child may run elsewhere
        env[f"LEADLOOM_{name.upper()}"] = str(value)
    return env
