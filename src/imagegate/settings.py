"""One settings tree, loaded once and passed down: defaults < ``imagegate.toml`` < ``IMAGEGATE_*`` env < arguments.

Nested values use ``__`` in environment variables (``IMAGEGATE_EMULATOR__LATENCY_MS=200``). Backends are chosen
by URL. With no deployment configured, ``GEMINI_API_KEY`` enables Google's API; otherwise the emulator serves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from imagegate.core.capabilities import RESOLUTIONS, ModelSpec, Prices
from imagegate.core.catalog import merged_tables, models_from_tables
from imagegate.core.money import parse_amount


class DeploymentSettings(BaseModel):
    """One provider instance serving some models (``[[deployments]]``).

    ``model`` (+ ``upstream_model``) is the short form for one model; ``models`` maps several of our model ids to
    the provider's own names; with neither, every catalog model is served under its own id. ``base_url`` and
    ``api_key`` go to the provider's options; any option string written ``env:NAME`` is read from the
    environment when the server starts, so keys need not sit in the file.
    """

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1)
    provider: str
    model: str | None = None
    upstream_model: str | None = None
    models: dict[str, str] = Field(default_factory=dict)
    base_url: str | None = None
    api_key: SecretStr | None = None
    priority: int = Field(default=1, description="lower is tried first")
    weight: float = Field(default=1.0, gt=0, description="share of traffic among deployments of one priority")
    max_concurrency: int | None = Field(default=None, ge=1, description="calls at once; none: unlimited")
    batch_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="share of max_concurrency batch jobs may take (at least one slot); none: the server's batch_share",
    )
    timeout_s: float | None = Field(default=None, gt=0, description="deadline of one call, retries included")
    retries: int = Field(
        default=0, ge=0, description="router retries on this deployment before failing over (timeouts too)"
    )
    max_input_images: int | None = Field(default=None, ge=0, description="when the upstream takes fewer")
    resolutions: list[str] | None = Field(
        default=None, description="the resolutions this upstream can make (e.g. no 4K); none: all the model's"
    )
    features: list[str] | None = Field(
        default=None, description="what this upstream can do beyond images (seed, thinking, grounding); none: all"
    )
    options: dict[str, Any] = Field(default_factory=dict)
    worker_only: bool = Field(
        default=False,
        description="run only by `imagegate worker --deployments NAME` (a GPU host); other processes know its "
        "prices and capabilities but never build it (with the database queue)",
    )
    # What this upstream's work costs callers, by our model id, where it differs from the model's prices:
    # {"gemini-2.5-flash-image": {"per_image": "0.02", "per_million_input_tokens": "0.15"}}; a resolution's
    # own price per image as "per_image_4K" (any of the model's resolutions).
    prices: dict[str, dict[str, str]] = Field(default_factory=dict)
    price_per_image: str | None = Field(default=None, description="short form of prices[model].per_image")

    @model_validator(mode="after")
    def _one_way_to_name_models(self) -> DeploymentSettings:
        if self.model is not None and self.models:
            raise ValueError(f"deployment {self.name}: give either 'model' or 'models', not both")
        if self.upstream_model is not None and self.model is None:
            raise ValueError(f"deployment {self.name}: 'upstream_model' needs 'model'")
        if self.price_per_image is not None and self.model is None:
            raise ValueError(f"deployment {self.name}: 'price_per_image' needs 'model' (or use 'prices')")
        if self.resolutions is not None and (bad := sorted(set(self.resolutions) - set(RESOLUTIONS))):
            raise ValueError(f"deployment {self.name}: resolutions {bad} are not among {list(RESOLUTIONS)}")
        return self

    @property
    def served_models(self) -> dict[str, str]:
        if self.model is not None:
            return {self.model: self.upstream_model or self.model}
        return dict(self.models)

    def provider_options(self, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
        """The options handed to the provider: ``options`` plus ``base_url``/``api_key``, ``env:`` resolved."""
        options = dict(self.options)
        if self.base_url is not None:
            options["base_url"] = self.base_url
        if self.api_key is not None:
            options["api_key"] = self.api_key.get_secret_value()
        return {
            name: _resolve_env(value, f"deployment {self.name}: {name}", environ) for name, value in options.items()
        }

    def prices_for(self, model: ModelSpec) -> Prices | None:
        given = dict(self.prices.get(model.id, {}))
        if self.price_per_image is not None and model.id == self.model:
            given.setdefault("per_image", self.price_per_image)
        if not given:
            return None
        by_resolution = {f"per_image_{name}": name for name in model.resolution_names}
        plain = {"per_image", "per_million_input_tokens", "per_million_output_tokens"}
        unknown = set(given) - plain - set(by_resolution)
        if unknown:
            raise ValueError(
                f"deployment {self.name}: unknown price fields {sorted(unknown)}; known: "
                f"{sorted(plain | set(by_resolution))}"
            )
        base = model.prices
        overrides: dict[str, Any] = {name: parse_amount(text) for name, text in given.items() if name in plain}
        # A flat per_image replaces every resolution's price; per_image_<R> then sets single resolutions.
        tiers = dict(base.per_image_by_resolution)
        if "per_image" in overrides:
            tiers = dict.fromkeys(tiers, overrides["per_image"])
        for key, name in by_resolution.items():
            if key in given:
                tiers[name] = parse_amount(given[key])
        overrides["per_image_by_resolution"] = tuple(tiers.items())
        if "per_image" not in overrides and model.default_resolution in tiers:
            overrides["per_image"] = tiers[model.default_resolution]
        return replace(base, **overrides)


def _resolve_env(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if not name:
            raise ValueError(f"{where}: 'env:' must be followed by an environment variable's name")
        if name not in environ:
            raise ValueError(f"{where} names the environment variable {name}, which is not set")
        return environ[name]
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, where, environ) for v in value]
    return value


class RoutingSettings(BaseModel):
    """How deployments are failed over and paused (``[routing]``); see ``routing.router.RoutingPolicy``."""

    model_config = {"extra": "forbid"}

    breaker_failures: int = Field(default=5, ge=1, description="failures in a row that pause a deployment")
    breaker_cooldown_s: float = Field(default=30.0, gt=0, description="pause before one probe call is let through")
    breaker_max_cooldown_s: float = Field(default=300.0, gt=0, description="failed probes double the pause to this")
    retry_base_delay_s: float = Field(default=0.5, ge=0, description="first backoff before retrying a deployment")
    retry_max_wait_s: float = Field(default=10.0, ge=0, description="longer Retry-After: fail over at once")
    retry_budget: int = Field(default=3, ge=0, description="retries of one job, providers' and router's together")


class OpenAIImagesSettings(BaseModel):
    """What the OpenAI Images dialect answers when the caller leaves it open."""

    default_response_format: Literal["url", "b64_json"] = Field(
        default="url",
        description="without response_format: url (OpenAI's default, and what the Lumenfall and AIML seeds show) "
        "or b64_json (what gpt-image models always return)",
    )
    revised_prompt: bool = Field(
        default=True, description="label each image with revised_prompt (the prompt it was made from, unchanged)"
    )


class S3Settings(BaseModel):
    """How an ``s3://`` storage URL is reached (``[s3]``, env ``IMAGEGATE_S3__ENDPOINT`` ...).

    Options left unset fall back to obstore's own ``AWS_*`` environment variables (``AWS_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``).
    """

    model_config = {"extra": "forbid"}

    endpoint: str | None = Field(default=None, description="S3-compatible server URL; none: AWS (or AWS_ENDPOINT_URL)")
    region: str | None = Field(default=None, description="bucket region; none: AWS_REGION or us-east-1")
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    virtual_hosted_style: bool = Field(default=False, description="bucket.host URLs instead of host/bucket paths")
    timeout_s: float = Field(default=30.0, gt=0, description="time limit of one storage request")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=3, ge=0, description="retries of a failed storage request, with backoff")
    retry_timeout_s: float = Field(default=30.0, gt=0, description="the most time spent retrying one operation")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IMAGEGATE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(default_factory=lambda: Path(os.environ.get("IMAGEGATE_HOME", "~/.imagegate")).expanduser())
    database_url: str | None = None  # default: sqlite under home
    storage_url: str | None = None  # default: file:// under home/files
    queue_url: str = Field(
        default="inprocess://",
        description="inprocess:// (one process) or database (the jobs table in PostgreSQL, for many processes)",
    )
    events_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the LISTEN/NOTIFY doorbell when it must differ from database_url "
        "(e.g. database_url goes through a transaction-pooling PgBouncer); default: database_url",
    )
    rate_limit_url: str = Field(
        default="memory://",
        description="where quotas, concurrency slots, breakers and provider stats are shared: memory:// or redis://",
    )
    storage_shared: bool = Field(
        default=False, description="a file:// storage_url is one directory all processes see (one host, shared mount)"
    )

    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str | None = None  # how clients reach us, when behind a proxy
    workers: int = Field(
        default=4, ge=0, description="jobs run at once by this process; 0: serve only accepts (database queue)"
    )
    heartbeat_s: float = Field(
        default=10.0, gt=0, description="database queue: how often a worker renews the leases of its jobs"
    )
    waiter_check_s: float = Field(
        default=1.0, gt=0, description="database queue: how often one query re-checks every job waited on here"
    )
    max_queued_per_model: int = Field(
        default=0, ge=0, description="database queue: queued jobs of one model before 429; 0 = no limit"
    )
    access_log: bool = Field(default=True, description="log every HTTP request (uvicorn's access log)")

    sync_timeout_s: float = Field(default=600.0, gt=0, description="how long a sync request waits for its job")
    job_lease_s: float = Field(default=300.0, gt=0, description="a running job not finished by then is recovered")
    max_attempts: int = Field(default=3, ge=1, description="runs of a job before a dead worker fails it")
    sweep_interval_s: float = Field(default=30.0, gt=0)
    shutdown_grace_s: float = Field(
        default=10.0, ge=0, description="on shutdown, how long running jobs may finish; the rest are recovered"
    )
    max_request_bytes: int = Field(default=100 * 1024 * 1024, description="request bodies above this get 413")
    url_signing_key: SecretStr | None = Field(
        default=None, description="HMAC key of image URLs; default: a random key kept in IMAGEGATE_HOME/url-signing.key"
    )
    file_url_ttl_s: float = Field(default=3600.0, gt=0, description="how long a returned image URL works")
    file_retention_days: float = Field(default=7.0, ge=0, description="output images are deleted after this; 0 = never")
    fetch_allow_networks: list[str] = Field(
        default_factory=list, description="CIDRs image URLs may point into although not public (e.g. a sidecar)"
    )
    fetch_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0, description="largest image fetched from a URL")
    batch_price_percent: int = Field(
        default=50, ge=0, le=1000, description="price of batch jobs in percent of the usual (Google's: 50)"
    )
    batch_expiry_hours: float = Field(
        default=48.0,
        gt=0,
        description="a batch not finished this long after it was created expires: its unfinished requests are "
        "cancelled, uncharged (Google's: 48 hours)",
    )
    batch_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="share of each deployment's max_concurrency batch jobs may take (at least one slot), "
        "so interactive requests always find the rest free",
    )
    gemini_file_max_bytes: int = Field(
        default=100 * 1024 * 1024, gt=0, description="largest file uploaded through the Gemini Files API"
    )
    max_input_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0, description="largest input image, however sent")
    max_input_pixels: int = Field(
        default=40_000_000, gt=0, description="largest input image in pixels, read from its header (no decoding)"
    )
    fetch_timeout_s: float = Field(default=15.0, gt=0, description="time limit of one image URL fetch")
    webhook_retry_delays_s: list[float] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0],
        description="waits between webhook attempts; delivery is given up after the last",
    )
    webhook_poll_s: float = Field(default=1.0, gt=0, description="how often due webhooks are looked for")
    webhook_lease_s: float = Field(
        default=60.0,
        ge=1,
        description="how long an attempt at a webhook is left to the process making it (sends are cut at half "
        "of it); after a crash, the wait before another process sends it again",
    )
    rate_limit_per_minute: int = Field(default=0, ge=0, description="requests per key per minute; 0 = no limit")
    key_cache_s: float = Field(
        default=5.0, ge=0, description="a verified API key is trusted this long without a read; 0 = read every time"
    )

    models: list[dict[str, Any]] = Field(
        default_factory=list,
        description="[[models]]: extend or override the shipped catalog (imagegate/core/models.toml) by id",
    )
    builtin_models: bool = Field(default=True, description="offer the shipped catalog's models; false: only [[models]]")
    deployments: list[DeploymentSettings] = Field(default_factory=list)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    openai_images: OpenAIImagesSettings = Field(default_factory=OpenAIImagesSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    metrics_public: bool = Field(default=False, description="serve /metrics without an admin key")
    emulator: dict[str, Any] = Field(default_factory=dict, description="options of the default emulator")
    gemini_api_key: SecretStr | None = Field(
        default_factory=lambda: SecretStr(os.environ["GEMINI_API_KEY"]) if os.environ.get("GEMINI_API_KEY") else None
    )

    @field_validator("gemini_api_key", mode="before")
    @classmethod
    def _blank_key_is_no_key(cls, value: object) -> object:
        if isinstance(value, str | SecretStr) and not str(
            value if isinstance(value, str) else value.get_secret_value()
        ):
            return None
        return value

    @field_validator("rate_limit_url")
    @classmethod
    def _known_rate_limit_backend(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError(f"rate_limit_url {value!r}: use memory:// or redis://host:port/db (rediss:// for TLS)")
        return value

    @model_validator(mode="after")
    def _queue_fits_the_database(self) -> Settings:
        if self.queue_url not in ("inprocess://", "memory://", "database"):
            raise ValueError(f'queue_url must be "inprocess://" or "database"; got {self.queue_url!r}')
        if self.distributed and not self.effective_database_url.startswith(("postgres://", "postgresql")):
            raise ValueError(
                'queue_url = "database" needs PostgreSQL (database_url = "postgresql://USER@HOST/DB"): '
                "SQLite cannot be shared by several processes. Use the default inprocess:// queue on SQLite."
            )
        if not self.distributed and self.workers == 0:
            raise ValueError(
                'workers = 0 needs queue_url = "database": with the in-process queue nobody else would run the jobs'
            )
        if self.distributed and self.heartbeat_s >= self.job_lease_s:
            raise ValueError(
                f"heartbeat_s ({self.heartbeat_s:g}) must be shorter than job_lease_s ({self.job_lease_s:g}): "
                "a lease must be renewed before it runs out"
            )
        if self.events_url is not None and not self.events_url.startswith(("postgres://", "postgresql")):
            raise ValueError(f"events_url must be a postgresql:// URL; got {self.events_url!r}")
        return self

    @model_validator(mode="after")
    def _distributed_queue_needs_shared_storage(self) -> Settings:
        # Another process may run the job, or serve its image: each must reach the same bytes.
        if self.distributed_queue and self.effective_storage_url.startswith("file:") and not self.storage_shared:
            raise ValueError(
                f"queue_url = {self.queue_url!r} runs jobs in several processes, but storage_url "
                f"{self.effective_storage_url!r} is a local directory. Use an object store "
                "(storage_url = 's3://bucket/prefix'), or set storage_shared = true (IMAGEGATE_STORAGE_SHARED=true) "
                "if every process sees this same directory (one host, or a shared mount)."
            )
        return self

    @property
    def distributed_queue(self) -> bool:
        """Whether jobs travel between processes (anything but the in-process queue)."""
        return self.distributed

    @property
    def distributed(self) -> bool:
        """True with the database queue: many processes share the database, each running some of the jobs."""
        return self.queue_url == "database"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_path())
        return (init_settings, env_settings, toml)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'imagegate.db'}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.home / "files").as_uri()

    @property
    def effective_deployments(self) -> list[DeploymentSettings]:
        """The configured deployments, or the default: Google's API with a key, else the emulator."""
        if self.deployments:
            return self.deployments
        if self.gemini_api_key is not None:
            return [
                DeploymentSettings(
                    name="gemini", provider="gemini", options={"api_key": self.gemini_api_key.get_secret_value()}
                )
            ]
        return [DeploymentSettings(name="emulator", provider="emulator", options=dict(self.emulator))]

    @model_validator(mode="after")
    def _models_are_valid(self) -> Settings:
        self.model_specs()  # a mistake in [[models]] is named at start-up, not on the first request
        return self

    def model_specs(self) -> list[ModelSpec]:
        return models_from_tables(merged_tables(self.models, builtin=self.builtin_models))

    def masked(self) -> dict[str, Any]:
        """Everything, with secrets (keys, passwords in URLs, provider keys) hidden, for ``imagegate settings``."""
        data = self.model_dump(mode="json")
        data["database_url"] = _mask_url(self.effective_database_url)
        data["storage_url"] = self.effective_storage_url
        data["url_signing_key"] = "***" if self.url_signing_key else None
        data["rate_limit_url"] = _mask_url(self.rate_limit_url)
        for secret in ("secret_access_key", "session_token"):
            if data["s3"].get(secret):
                data["s3"][secret] = "***"
        for dep in data.get("deployments", []):
            dep["options"] = _mask_options(dep.get("options", {}))
            if dep.get("api_key"):
                dep["api_key"] = "***"
        return data


_config_override: Path | None = None


def _config_path() -> Path:
    if _config_override is not None:
        return _config_override
    if env := os.environ.get("IMAGEGATE_CONFIG"):
        return Path(env).expanduser()
    home = Path(os.environ.get("IMAGEGATE_HOME", "~/.imagegate")).expanduser()
    return home / "imagegate.toml"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings once. ``config`` names a TOML file; ``overrides`` win over everything."""
    global _config_override
    if config is not None and not config.is_file():
        raise FileNotFoundError(f"config file not found: {config}")
    _config_override = config
    try:
        return Settings(**overrides)
    finally:
        _config_override = None


def _mask_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _mask_options(options: dict[str, Any]) -> dict[str, Any]:
    secret_words = ("key", "token", "secret", "password", "credentials")
    return {k: ("***" if any(w in k.lower() for w in secret_words) and v else v) for k, v in options.items()}
