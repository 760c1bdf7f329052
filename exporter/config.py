"""The exporter's configuration: one TOML file (``config.toml`` in the exporter home), read and checked.

Every section and key is documented in ``resources/examples/exporter.toml`` and docs/EXPORTER.md.
Unknown keys are refused, naming the key, so a typo never silently turns a safety check off.
Relative paths are relative to the folder holding the config file.

This module must never write the config file (IT owns it and its comments) and never open a source,
a destination or a key; it only turns text into settings.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backup_operator.errors import ConfigError

__all__ = [
    "Config",
    "ExportSettings",
    "CheckSettings",
    "PublishSettings",
    "SftpDefaults",
    "DestinationConfig",
    "ScheduleJob",
    "ScheduleSettings",
    "LogSettings",
    "MonitoringSettings",
    "NotifySettings",
    "EmailSettings",
    "WebhookSettings",
    "load_config",
    "parse_config",
    "inline_secrets",
    "write_new_config",
    "parse_destination",
    "STARTER_CONFIG",
]


@dataclass
class ExportSettings:
    description: str = "hospital directory"
    interval_minutes: int = 15
    expires_after_hours: float = 72.0
    window_days_back: int = 14
    window_days_ahead: int = 60
    # The whole export (reading, checks, build, seal) must finish within this; publishing has its own
    # per-destination timeouts. A hung source then fails the run and frees the lock.
    deadline_minutes: float = 30.0

    @property
    def expected_interval_s(self) -> int:
        return int(self.interval_minutes * 60)


@dataclass
class CheckSettings:
    max_drop_percent: float = 10.0
    coverage_days: int = 7
    coverage_tiers: list[int] = field(default_factory=lambda: [1])
    coverage_exempt: list[str] = field(default_factory=list)
    # An explicit, logged override of failed checks (the config twin of ``run --force``).
    force: bool = False
    # Contact methods with an empty value: "skip" them (counted in the log and the run summary) or
    # "refuse" the export.
    empty_contacts: str = "skip"


@dataclass
class PublishSettings:
    keep_snapshots: int = 3
    retries: int = 3
    backoff_s: float = 2.0
    timeout_s: float = 30.0
    parallel: int = 8


@dataclass
class SftpDefaults:
    """Connection settings for ``sftp://`` inboxes that do not come from a [[destinations]] entry."""

    username: str | None = None
    key_file: Path | None = None
    key_passphrase_env: str | None = None
    password_env: str | None = None
    known_hosts: Path | None = None
    host_keys: list[str] = field(default_factory=list)
    port: int = 22


@dataclass
class DestinationConfig:
    name: str
    kind: str  # "folder", "sftp", or "web" (a folder a web server serves to http(s) inboxes)
    path: str
    host: str = ""
    port: int = 22
    username: str | None = None
    key_file: Path | None = None
    key_passphrase_env: str | None = None
    password_env: str | None = None
    known_hosts: Path | None = None
    host_keys: list[str] = field(default_factory=list)
    keep_snapshots: int | None = None
    keep_deltas: int | None = None  # web: how many deltas the manifest offers (default 96, a day of 15 min)

    @property
    def label(self) -> str:
        if self.kind == "sftp":
            return f"sftp://{self.username + '@' if self.username else ''}{self.host}:{self.port}{self.path}"
        return self.path


@dataclass
class ScheduleJob:
    name: str
    cron: str


@dataclass
class ScheduleSettings:
    timezone: str = "UTC"
    misfire_grace_s: int = 300
    jobs: list[ScheduleJob] = field(default_factory=list)


@dataclass
class LogSettings:
    file: Path | None = None
    level: str = "INFO"
    max_bytes: int = 5 * 1024 * 1024
    backups: int = 5


@dataclass
class MonitoringSettings:
    # Written after every run (default: health.json in the exporter home) for monitors that read files.
    health_file: Path | None = None
    # A desktop is "behind" once it has missed a snapshot for longer than this many export intervals.
    behind_after_intervals: float = 2.0


@dataclass
class EmailSettings:
    host: str = ""
    port: int = 587
    security: str = "starttls"  # "starttls", "ssl" (implicit TLS, port 465) or "none" (a relay on the LAN)
    sender: str = ""  # the "from" key
    to: list[str] = field(default_factory=list)
    username: str | None = None
    password_env: str | None = None
    timeout_s: float = 30.0


@dataclass
class WebhookSettings:
    url: str = ""
    token_env: str | None = None  # sent as "Authorization: Bearer <token>"
    timeout_s: float = 10.0


@dataclass
class NotifySettings:
    repeat_minutes: float = 240.0
    min_interval_minutes: float = 60.0
    on_recovery: bool = True
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None


@dataclass
class Config:
    path: Path | None
    export: ExportSettings = field(default_factory=ExportSettings)
    checks: CheckSettings = field(default_factory=CheckSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    sftp: SftpDefaults = field(default_factory=SftpDefaults)
    sources: list[dict[str, Any]] = field(default_factory=list)
    destinations: list[DestinationConfig] = field(default_factory=list)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    log: LogSettings = field(default_factory=LogSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    # Said on every command that reads the config (inline secrets, a config others can read).
    warnings: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, value: str | os.PathLike) -> Path:
        path = Path(os.path.expandvars(str(value))).expanduser()
        return path if path.is_absolute() else self.base_dir / path


STARTER_CONFIG = """\
# Backup Operator exporter configuration.
# Every key is explained in the annotated example resources/examples/exporter.toml and in
# docs/EXPORTER.md. Relative paths are relative to this file's folder.

[export]
description = "hospital directory"
interval_minutes = 15          # how often desktops should expect a new snapshot
expires_after_hours = 72       # after this, desktops show a staleness banner (they still open it)

[checks]
max_drop_percent = 10          # refuse an export that lost more listings or contact methods than this
coverage_days = 7              # refuse an export with on-call gaps in the next N days

[publish]
keep_snapshots = 3             # older snapshot files are pruned from each inbox

# Add at least one source. A CSV file:
# [[sources]]
# type = "csv"
# table = "listings"
# path = "exports/staff.csv"
#
# Or the directory database itself (PostgreSQL, MariaDB/MySQL, SQL Server; the examples in
# resources/examples/exporter-sql.toml show every query). Passwords come from the environment, never
# from this file:
# [[sources]]
# type = "sql"
# name = "hr"
# url = "postgresql+psycopg2://bo_reader@db.example.org/directory"   # or mysql+pymysql://…
# password_env = "BO_DIRECTORY_PASSWORD"
# naive_times = "local"        # DATETIME columns without an offset are wall time in the schedule's zone
# [sources.queries]
# listings = "SELECT id, kind, display_name, department, title FROM bo_listings"
# contact_methods = "SELECT listing_id, kind, label, value FROM bo_contact_methods WHERE value <> ''"

[schedule]
timezone = "UTC"
# [[schedule.jobs]]
# name = "every 15 minutes"
# cron = "*/15 * * * *"
"""


def _where(path: Path | None, section: str) -> str:
    return f"{path or 'the exporter config'} [{section}]"


def _take(table: dict[str, Any], cls: type, section: str, path: Path | None, convert=None) -> Any:
    """Fill dataclass ``cls`` from a TOML table, refusing unknown keys and wrong types by name."""
    known = {f.name: f for f in cls.__dataclass_fields__.values()}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            choices = ", ".join(sorted(known))
            raise ConfigError(f"{_where(path, section)}: unknown key {key!r} (known keys: {choices}).")
        kwargs[key] = convert(key, value) if convert else value
    try:
        obj = cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{_where(path, section)}: {exc}.") from None
    for name, f in known.items():
        value = getattr(obj, name)
        expected = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if expected in ("int",) and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"{_where(path, section)}: {name} must be a whole number, not {value!r}.")
        if expected == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise ConfigError(f"{_where(path, section)}: {name} must be a number, not {value!r}.")
        if expected == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{_where(path, section)}: {name} must be true or false, not {value!r}.")
        if expected == "str" and not isinstance(value, str):
            raise ConfigError(f"{_where(path, section)}: {name} must be text in quotes, not {value!r}.")
    return obj


_PATH_KEYS = {"key_file", "known_hosts", "file", "health_file"}


def parse_destination(doc: dict[str, Any], config: "Config", section: str = "destinations") -> DestinationConfig:
    doc = dict(doc)
    kind = doc.pop("type", None)
    if kind not in ("folder", "sftp", "web"):
        raise ConfigError(f"{_where(config.path, section)}: type must be \"folder\", \"sftp\" or \"web\", "
                          f"not {kind!r}.")
    if "path" not in doc or not isinstance(doc["path"], str) or not doc["path"]:
        raise ConfigError(f"{_where(config.path, section)}: every destination needs a path.")
    if kind == "sftp" and not doc.get("host"):
        raise ConfigError(f"{_where(config.path, section)}: an sftp destination needs a host.")
    doc.setdefault("name", doc["path"] if kind in ("folder", "web") else f"{doc['host']}:{doc['path']}")

    def convert(key: str, value: Any) -> Any:
        if key in _PATH_KEYS and isinstance(value, str):
            return config.resolve(value)
        return value

    doc["kind"] = kind
    dest = _take(doc, DestinationConfig, section, config.path, convert)
    if kind in ("folder", "web"):
        dest.path = str(config.resolve(dest.path)) if not dest.path.startswith("\\\\") else dest.path
    return dest


def parse_config(doc: dict[str, Any], path: Path | None = None) -> Config:
    config = Config(path=path)
    known_sections = {"export", "checks", "publish", "sftp", "sources", "destinations", "schedule", "log",
                      "monitoring", "notify"}
    for key in doc:
        if key not in known_sections:
            raise ConfigError(f"{path or 'the exporter config'}: unknown section [{key}] "
                              f"(known: {', '.join(sorted(known_sections))}).")

    def paths(key: str, value: Any) -> Any:
        if key in _PATH_KEYS and isinstance(value, str):
            return config.resolve(value)
        return value

    config.export = _take(doc.get("export", {}), ExportSettings, "export", path)
    config.checks = _take(doc.get("checks", {}), CheckSettings, "checks", path)
    config.publish = _take(doc.get("publish", {}), PublishSettings, "publish", path)
    config.sftp = _take(doc.get("sftp", {}), SftpDefaults, "sftp", path, paths)
    config.log = _take(doc.get("log", {}), LogSettings, "log", path, paths)
    config.monitoring = _take(doc.get("monitoring", {}), MonitoringSettings, "monitoring", path, paths)
    config.notify = _parse_notify(doc.get("notify", {}), path)

    schedule = dict(doc.get("schedule", {}))
    jobs = schedule.pop("jobs", [])
    config.schedule = _take(schedule, ScheduleSettings, "schedule", path)
    for n, job in enumerate(jobs, 1):
        if not isinstance(job, dict) or "cron" not in job:
            raise ConfigError(f"{_where(path, 'schedule.jobs')}: job {n} needs a cron line like "
                              "\"*/15 * * * *\".")
        config.schedule.jobs.append(_take({"name": f"job {n}", **job}, ScheduleJob, "schedule.jobs", path))
    try:
        ZoneInfo(config.schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{_where(path, 'schedule')}: timezone {config.schedule.timezone!r} is not an "
                          "IANA time zone (like America/Chicago).") from None

    sources = doc.get("sources", [])
    if not isinstance(sources, list):
        raise ConfigError(f"{_where(path, 'sources')}: write each source as a [[sources]] table.")
    for n, source in enumerate(sources, 1):
        if not isinstance(source, dict) or "type" not in source:
            raise ConfigError(f"{_where(path, 'sources')}: source {n} needs a type (sql, csv, ical or rota).")
        config.sources.append({"name": f"{source['type']} source {n}", **source})

    for n, dest in enumerate(doc.get("destinations", []), 1):
        if not isinstance(dest, dict):
            raise ConfigError(f"{_where(path, 'destinations')}: write each destination as a "
                              "[[destinations]] table.")
        config.destinations.append(parse_destination(dest, config, f"destinations {n}"))

    checks = config.checks
    if not 0 <= checks.max_drop_percent <= 100:
        raise ConfigError(f"{_where(path, 'checks')}: max_drop_percent must be between 0 and 100.")
    if checks.empty_contacts not in ("skip", "refuse"):
        raise ConfigError(f"{_where(path, 'checks')}: empty_contacts must be \"skip\" or \"refuse\", not "
                          f"{checks.empty_contacts!r}.")
    if config.publish.keep_snapshots < 1:
        raise ConfigError(f"{_where(path, 'publish')}: keep_snapshots must be 1 or more.")
    export = config.export
    if export.interval_minutes < 1:
        raise ConfigError(f"{_where(path, 'export')}: interval_minutes must be 1 or more.")
    if not 0 <= export.window_days_back <= 366 or not 1 <= export.window_days_ahead <= 366:
        raise ConfigError(f"{_where(path, 'export')}: window_days_back must be 0 to 366 and window_days_ahead "
                          f"1 to 366 (days of shifts around now), not {export.window_days_back} and "
                          f"{export.window_days_ahead}.")
    if not export.deadline_minutes > 0:
        raise ConfigError(f"{_where(path, 'export')}: deadline_minutes must be above 0.")
    if not export.expires_after_hours > 0:
        raise ConfigError(f"{_where(path, 'export')}: expires_after_hours must be above 0.")
    if config.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{_where(path, 'log')}: level must be DEBUG, INFO, WARNING or ERROR.")
    return config


def _parse_notify(doc: dict[str, Any], path: Path | None) -> NotifySettings:
    doc = dict(doc)
    email, webhook = doc.pop("email", None), doc.pop("webhook", None)
    settings = _take(doc, NotifySettings, "notify", path)
    if settings.repeat_minutes < 1 or settings.min_interval_minutes < 0:
        raise ConfigError(f"{_where(path, 'notify')}: repeat_minutes must be 1 or more and min_interval_minutes "
                          "0 or more.")
    if email is not None:
        email = dict(email)
        if "from" in email:
            email["sender"] = email.pop("from")
        if isinstance(email.get("to"), str):
            email["to"] = [email["to"]]
        settings.email = _take(email, EmailSettings, "notify.email", path)
        e = settings.email
        if not e.host or not e.sender or not e.to or not all(isinstance(t, str) and "@" in t for t in e.to):
            raise ConfigError(f"{_where(path, 'notify.email')}: give host, from and to (one address or a list "
                              "of addresses).")
        if e.security not in ("starttls", "ssl", "none"):
            raise ConfigError(f"{_where(path, 'notify.email')}: security must be \"starttls\", \"ssl\" or "
                              f"\"none\", not {e.security!r}.")
        if "password" in email:
            raise ConfigError(f"{_where(path, 'notify.email')}: put the password in an environment variable and "
                              "name it with password_env.")
    if webhook is not None:
        settings.webhook = _take(dict(webhook), WebhookSettings, "notify.webhook", path)
        if not settings.webhook.url.lower().startswith(("http://", "https://")):
            raise ConfigError(f"{_where(path, 'notify.webhook')}: url must start with http:// or https://.")
    return settings


def load_config(path: Path) -> Config:
    """Read ``path``; a missing file is an empty config (no sources yet), not an error."""
    if not path.exists():
        return Config(path=path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix that line and run again.") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror or exc}).") from None
    config = parse_config(doc, path)
    config.warnings += inline_secrets(config)
    if config.warnings and os.name != "nt":
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = 0
        if mode & 0o077:
            config.warnings.append(f"{path} holds a secret and can be read by other accounts (mode "
                                   f"{mode:04o}); run chmod 600 {path}.")
    return config


# Query parameters that carry a credential in a URL (a webhook's ?token=…, a SAS signature).
_SECRET_PARAMS = {"token", "access_token", "apikey", "api_key", "key", "secret", "password", "pass", "pwd",
                  "sig", "signature", "auth"}


def _url_secret(url: str) -> str | None:
    """What kind of secret ``url`` carries inline, if any ("a password", "a token")."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        if parts.password:
            return "a password"
    except ValueError:
        return None
    if any(name.lower() in _SECRET_PARAMS and value for name, value in parse_qsl(parts.query)):
        return "a token"
    return None


def inline_secrets(config: Config) -> list[str]:
    """One warning per secret written in the config itself rather than taken from the environment.

    Such a config is refused nowhere (it works), but a config file is copied, mailed and committed; the
    environment (or a service's credential store) is where passwords belong. Never quotes the secret.
    """
    found = []
    for spec in config.sources:
        name = spec.get("name")
        for key in ("url", "path"):
            value = spec.get(key)
            if isinstance(value, str) and (kind := _url_secret(value)):
                env = "password_env" if kind == "a password" else "url_env"
                found.append(f"source {name!r}: its {key} holds {kind} in the config file; put it in the "
                             f"environment instead ({env} = \"NAME_OF_VARIABLE\").")
        for key in ("password", "passwd", "token", "secret"):
            if spec.get(key):
                found.append(f"source {name!r}: {key} is written in the config file; use {key}_env or "
                             "password_env with an environment variable instead.")
    for dest in config.destinations:
        if _url_secret(dest.path) or _url_secret(f"sftp://{dest.host}{dest.path}" if dest.host else ""):
            found.append(f"destination {dest.name!r} holds a password in the config file; use password_env "
                         "or a key_file instead.")
    webhook = config.notify.webhook
    if webhook is not None and (kind := _url_secret(webhook.url)):
        found.append(f"[notify.webhook] url holds {kind} in the config file; put it in the environment and "
                     "name it with token_env.")
    return found


def write_new_config(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (0600): it names databases, hosts and accounts.

    Never replaces an existing file (IT owns it and its comments).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
        out.write(text)
    if os.name != "nt":
        os.chmod(path, 0o600)  # whatever the umask said

