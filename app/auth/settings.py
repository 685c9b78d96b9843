"""``GUARDSERVE_AUTH__*``: API key verification and the secrets behind it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

DEV_PEPPER = "guardserve-dev-pepper-not-a-secret"  # dev mode only; prod refuses it


class SecretError(ValueError):
    pass


def read_secret(value: SecretStr | None, file: Path | None, name: str) -> str | None:
    """A secret from its variable or, failing that, from a file (Kubernetes/Docker secrets)."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"cannot read {name} from {file}: {exc.strerror}") from exc
        return text or None
    return None


class AuthSettings(BaseModel):
    enabled: bool = True  # off: /v1 is open (tests, `guardserve engine`); prod refuses it
    pepper: SecretStr | None = None  # HMAC key of the stored key hashes (>= 32 chars in prod)
    pepper_file: Path | None = None
    admin_key: SecretStr | None = None  # bootstrap admin key (gs-..., >= 40 chars); required in prod
    admin_key_file: Path | None = None
    # Key lookups are cached this long per process: a revoked key stops working within this many seconds on
    # every replica (at once on the replica that revoked it).
    cache_seconds: float = Field(2.0, ge=0, le=60)
    # While Redis is unreachable, keys this process verified within this many seconds keep working.
    stale_seconds: float = Field(300.0, ge=0)
    # Dev mode: an admin key at start-up. `guardserve serve` keeps it in dev_key_file (0600, reused every start);
    # an app started otherwise (uvicorn guardserve.app.main:...) creates one in its key store and prints it.
    dev_key: bool = True
    dev_key_file: Path = Path(".guardserve/dev-admin-key")

    def pepper_value(self) -> str | None:
        return read_secret(self.pepper, self.pepper_file, "the pepper")

    def admin_key_value(self) -> str | None:
        return read_secret(self.admin_key, self.admin_key_file, "the admin key")
