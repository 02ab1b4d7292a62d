"""Settings, read from the environment in one place and passed around frozen.

Every bad value is reported at once, with the variable name and what was expected, so an
operator fixes a deployment in one round instead of one crash per variable.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from tenants.domains.dns import DnsTxtLookup
from tenants.mail.sender import SmtpSecurity
from tenants.network import NetworkPolicy


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Pooler(StrEnum):
    """What stands between the service and PostgreSQL on ``APP_DATABASE_URL``."""

    NONE = "none"
    #: PgBouncer (or alike) in ``pool_mode = transaction``: a server connection per
    #: transaction, so no statement cache and no session state on it.
    TRANSACTION = "transaction"


class IdentityBackend(StrEnum):
    LOCAL = "local"
    KEYCLOAK = "keycloak"


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An external token issuer (e.g. a Keycloak realm) whose access tokens the API accepts.

    ``organisation_claim`` names the claim carrying the organisation's slug (Keycloak 26
    puts the organisation in ``organization``); ``scope_claim`` the space-separated scopes.
    """

    issuer: str
    jwks_uri: str
    audience: str
    organisation_claim: str = "organization"
    scope_claim: str = "scope"


class SettingsError(ValueError):
    """Raised with every problem found in the environment, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class Settings:
    environment: Environment = Environment.DEVELOPMENT
    #: Administrative connection (runs migrations, creates roles). None: embedded PostgreSQL.
    database_url: str | None = None
    #: Runtime connection as a role that owns nothing. None: derived from database_url.
    app_database_url: str | None = None
    #: What ``app_database_url`` goes through (docs/scaling.md).
    database_pooler: Pooler = Pooler.NONE
    #: With a transaction pooler: the runtime role's connection straight to PostgreSQL, for
    #: what a pooler cannot carry (LISTEN for the caches' invalidation).
    direct_app_database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("tenantry")))
    database_name: str = "tenantry"
    app_role: str = "tenantry_app"
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    secret_key: str = ""
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = 1_048_576
    pool_size: int = 10
    identity_backend: IdentityBackend = IdentityBackend.LOCAL
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    #: Where Entra publishes a tenant's signing keys (``{tenant}`` is replaced); the keys
    #: check the access tokens of Entra's token-issuance callout (/v1/claims/token-issuance).
    entra_jwks_url: str = "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
    #: Sign-in attempts per client address per 5 minutes (a school may share one address).
    login_rate_limit: int = 300
    #: Run a worker inside ``tenantry serve`` (departures, webhooks, email progress, the
    #: audit sealer, without a second process). Turn off where ``tenantry worker`` runs
    #: separately: a web node without one does no background work.
    embedded_worker: bool = True
    #: Webhooks and identity providers may be on private networks (``tenants.network``):
    #: for products and providers on the operator's own network. Off: on the internet.
    private_networks: bool = False
    #: On SIGTERM, how long a worker (``tenantry worker``, or the embedded one) waits for
    #: running jobs before releasing them to the queue for another worker.
    shutdown_seconds: int = 30
    #: Allocations between two young-generation garbage collections (``gc`` threshold 0).
    #: Python's 700 makes one every few requests, each a pause of tens of microseconds in
    #: the middle of one: resolving settings for a new set of groups had a p99 of 60 µs
    #: with it and 25 µs with 50,000 (``bench/decision.py``). 0 keeps Python's default.
    gc_threshold: int = 50_000
    #: Outgoing email. No host: emails are recorded (``mail_messages``) but not sent.
    smtp_host: str | None = None
    #: None: the usual port of ``smtp_security`` (25, 587 or 465).
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    #: The From address; shown with the organisation's name ("Acme via Tenantry").
    mail_from: str = "no-reply@tenantry.invalid"
    #: Resolvers for domain verification (TXT records); empty: the system's resolvers.
    dns_nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    #: Prometheus metrics at /metrics (app/metrics.py).
    metrics: bool = True
    #: With a token, /metrics answers a scraper presenting it as a bearer token from any
    #: address; without one, only this machine (loopback) is answered.
    metrics_token: str | None = None
    #: OpenTelemetry traces go to this OTLP/HTTP endpoint (app/tracing.py); None: off.
    otel_endpoint: str | None = None

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS: in production, and wherever the service is reached by
        an https address (a staging site sent its cookies in clear where it could)."""
        return self.is_production or self.base_url.startswith("https://")

    @property
    def outbound_networks(self) -> NetworkPolicy:
        """Where the service's requests to addresses admins typed (webhooks, identity
        providers) may go: this machine outside production (a developer's receiver or
        provider), private networks when the operator allows them."""
        return NetworkPolicy(loopback=not self.is_production, private=self.private_networks)

    def dns_lookup(self) -> DnsTxtLookup:
        """The TXT lookup domain verification uses (the configured resolvers)."""
        return DnsTxtLookup(self.dns_nameservers, self.dns_port)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``).

        Raises SettingsError naming every bad variable. In development a missing
        ``TENANTRY_SECRET_KEY`` is generated once and kept in the data folder so that
        sessions survive restarts; production refuses to start without one.
        """
        env = os.environ if env is None else env
        problems: list[str] = []
        values: dict[str, object] = {}

        def text(name: str, attr: str) -> None:
            raw = env.get(name)
            if raw is not None and raw.strip():
                values[attr] = raw.strip()

        def boolean(name: str, attr: str) -> None:
            raw = env.get(name, "").strip().lower()
            if not raw:
                return
            if raw not in {"true", "false", "1", "0", "on", "off"}:
                problems.append(f"{name}={raw!r}: expected true or false")
            else:
                values[attr] = raw in {"true", "1", "on"}

        def integer(name: str, attr: str, low: int, high: int) -> None:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return
            try:
                number = int(raw)
            except ValueError:
                problems.append(f"{name}={raw!r}: expected a whole number")
                return
            if not low <= number <= high:
                problems.append(f"{name}={raw!r}: expected a number from {low} to {high}")
                return
            values[attr] = number

        def choice(name: str, attr: str, enum: type[StrEnum]) -> None:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return
            try:
                values[attr] = enum(raw.strip().lower())
            except ValueError:
                allowed = ", ".join(e.value for e in enum)
                problems.append(f"{name}={raw!r}: expected one of {allowed}")

        def url(name: str, attr: str, schemes: tuple[str, ...]) -> None:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return
            parts = urlsplit(raw.strip())
            if parts.scheme not in schemes:
                problems.append(f"{name}: expected a URL starting with {' or '.join(schemes)}://")
                return
            values[attr] = raw.strip()

        choice("TENANTRY_ENV", "environment", Environment)
        url("DATABASE_URL", "database_url", ("postgres", "postgresql"))
        url("APP_DATABASE_URL", "app_database_url", ("postgres", "postgresql"))
        url("DIRECT_APP_DATABASE_URL", "direct_app_database_url", ("postgres", "postgresql"))
        choice("DATABASE_POOLER", "database_pooler", Pooler)
        if values.get("database_pooler") is Pooler.TRANSACTION:
            for name, attr in (
                ("APP_DATABASE_URL", "app_database_url"),
                ("DIRECT_APP_DATABASE_URL", "direct_app_database_url"),
            ):
                if attr not in values:
                    problems.append(
                        f"{name}: required with DATABASE_POOLER=transaction (APP_DATABASE_URL "
                        "through the pooler, DIRECT_APP_DATABASE_URL straight to PostgreSQL)"
                    )
        url("TENANTRY_PUBLIC_URL", "public_url", ("http", "https"))
        url("ENTRA_JWKS_URL", "entra_jwks_url", ("https", "http"))
        text("TENANTRY_HOST", "host")
        integer("TENANTRY_PORT", "port", 1, 65535)
        integer("TENANTRY_MAX_BODY_BYTES", "max_body_bytes", 1024, 512 * 1024 * 1024)
        integer("DATABASE_POOL_SIZE", "pool_size", 1, 500)
        integer("TENANTRY_LOGIN_RATE_LIMIT", "login_rate_limit", 1, 1_000_000)
        choice("IDENTITY_BACKEND", "identity_backend", IdentityBackend)
        text("TENANTRY_APP_ROLE", "app_role")
        text("TENANTRY_DATABASE_NAME", "database_name")
        raw_issuers = env.get("TRUSTED_ISSUERS", "").strip()
        if raw_issuers:
            try:
                values["trusted_issuers"] = _parse_trusted_issuers(raw_issuers)
            except ValueError as exc:
                problems.append(f"TRUSTED_ISSUERS: {exc}")
        raw_dir = env.get("TENANTRY_DATA_DIR")
        if raw_dir and raw_dir.strip():
            values["data_dir"] = Path(raw_dir.strip()).expanduser().resolve()
        level = env.get("LOG_LEVEL", "").strip().upper()
        if level:
            if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
                problems.append(f"LOG_LEVEL={level!r}: expected DEBUG, INFO, WARNING or ERROR")
            else:
                values["log_level"] = level
        log_format = env.get("LOG_FORMAT", "").strip().lower()
        if log_format:
            if log_format not in {"json", "console"}:
                problems.append(f"LOG_FORMAT={log_format!r}: expected json or console")
            else:
                values["log_json"] = log_format == "json"
        boolean("TENANTRY_EMBEDDED_WORKER", "embedded_worker")
        boolean("TENANTRY_PRIVATE_NETWORKS", "private_networks")
        if "TENANTRY_WEBHOOK_PRIVATE_NETWORKS" in env:  # its name until identity providers
            problems.append(
                "TENANTRY_WEBHOOK_PRIVATE_NETWORKS: renamed TENANTRY_PRIVATE_NETWORKS, which "
                "also covers identity providers"
            )
        integer("TENANTRY_SHUTDOWN_SECONDS", "shutdown_seconds", 0, 3600)
        integer("TENANTRY_GC_THRESHOLD", "gc_threshold", 0, 10_000_000)
        boolean("TENANTRY_METRICS", "metrics")
        text("SMTP_HOST", "smtp_host")
        integer("SMTP_PORT", "smtp_port", 1, 65535)
        text("TENANTRY_METRICS_TOKEN", "metrics_token")
        url("OTEL_EXPORTER_OTLP_ENDPOINT", "otel_endpoint", ("http", "https"))
        if "otel_endpoint" in values and importlib.util.find_spec("opentelemetry.sdk") is None:
            problems.append(
                "OTEL_EXPORTER_OTLP_ENDPOINT: tracing needs its packages: "
                "pip install 'tenantry[tracing]'"
            )
        token = str(values.get("metrics_token", ""))
        if token and len(token) < 24:
            problems.append("TENANTRY_METRICS_TOKEN: expected at least 24 characters")
        text("SMTP_USERNAME", "smtp_username")
        text("SMTP_PASSWORD", "smtp_password")
        choice("SMTP_SECURITY", "smtp_security", SmtpSecurity)
        text("SMTP_FROM", "mail_from")
        integer("DNS_PORT", "dns_port", 1, 65535)
        raw_nameservers = env.get("DNS_NAMESERVERS", "").strip()
        if raw_nameservers:
            servers = tuple(s for s in raw_nameservers.replace(",", " ").split() if s)
            bad = [s for s in servers if not _is_ip_address(s)]
            if bad:
                problems.append(f"DNS_NAMESERVERS: {', '.join(bad)} is not an IP address")
            else:
                values["dns_nameservers"] = servers
        if ("smtp_username" in values) != ("smtp_password" in values):
            problems.append("SMTP_USERNAME and SMTP_PASSWORD: give both or neither")
        mail_from = str(values.get("mail_from", ""))
        if mail_from and ("@" not in mail_from or any(c in mail_from for c in "<>\r\n ")):
            problems.append(f"SMTP_FROM={mail_from!r}: expected a plain address (name@domain)")
        if "smtp_host" in values and "mail_from" not in values:
            problems.append("SMTP_FROM: required with SMTP_HOST (the address emails come from)")
        for name in ("TENANTRY_APP_ROLE", "TENANTRY_DATABASE_NAME"):
            value = env.get(name, "").strip()
            if value and not value.replace("_", "").isalnum():
                problems.append(f"{name}={value!r}: only letters, digits and _ are allowed")

        environment = values.get("environment", Environment.DEVELOPMENT)
        secret = env.get("TENANTRY_SECRET_KEY", "").strip()
        if secret:
            if len(secret) < 32:
                problems.append("TENANTRY_SECRET_KEY: expected at least 32 characters")
            values["secret_key"] = secret
        elif environment is Environment.PRODUCTION:
            problems.append("TENANTRY_SECRET_KEY: required in production (32+ random characters)")
        if environment is Environment.PRODUCTION and "database_url" not in values:
            problems.append(
                "DATABASE_URL: required in production (the embedded database is for trying out)"
            )

        if problems:
            raise SettingsError(problems)
        settings = cls(**values)  # type: ignore[arg-type]
        if not settings.secret_key:
            settings = replace(settings, secret_key=_development_secret(settings.data_dir))
        return settings


def _is_ip_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _development_secret(data_dir: Path) -> str:
    """A per-installation secret for development, created on first use and kept."""
    path = data_dir / "secret-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _parse_trusted_issuers(raw: str) -> tuple[TrustedIssuer, ...]:
    """``[{"issuer": …, "jwks_uri": …, "audience": …, "organisation_claim"?: …}]``."""
    import json

    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of objects")
    issuers = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"item {index} is not an object")
        missing = [
            k for k in ("issuer", "jwks_uri", "audience") if not isinstance(item.get(k), str)
        ]
        if missing:
            raise ValueError(f"item {index} lacks {', '.join(missing)}")
        unknown = set(item) - {
            "issuer",
            "jwks_uri",
            "audience",
            "organisation_claim",
            "scope_claim",
        }
        if unknown:
            raise ValueError(f"item {index} has unknown keys {', '.join(sorted(unknown))}")
        for key in ("issuer", "jwks_uri"):
            if urlsplit(item[key]).scheme not in ("https", "http"):
                raise ValueError(f"item {index}: {key} must be an http(s) URL")
        issuers.append(TrustedIssuer(**item))
    return tuple(issuers)
