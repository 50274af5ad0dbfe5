"""Settings of the local inference server (``mmship serve`` flags, deploy config)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from mmship.core.errors import MmshipError
from mmship.serving.admission import DEFAULT_BUDGET_MS
from mmship.serving.label_cache import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES
from mmship.serving.url_fetch import UrlFetchSettings

#: Accepted API key lengths: long enough not to be guessed, short enough for one header.
MIN_API_KEY_LENGTH = 16
MAX_API_KEY_LENGTH = 4096


def check_api_key(key: str) -> str:
    """``key`` when it can serve as a bearer key; raises :class:`MmshipError` naming why not.

    Empty keys (``--api-key "$UNSET_VAR"``) would switch authentication off, short ones
    can be guessed, and whitespace or non-ASCII characters cannot travel in an
    ``Authorization`` header.
    """
    hint = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    if not key:
        raise MmshipError(
            "the API key is empty (an unset variable in `--api-key \"$VAR\"`?); an empty key would turn "
            "authentication off", hint=hint + " and pass it with --api-key or MMSHIP_API_KEY",
        )
    if len(key) < MIN_API_KEY_LENGTH or len(key) > MAX_API_KEY_LENGTH:
        raise MmshipError(
            f"the API key has {len(key)} characters; keys need {MIN_API_KEY_LENGTH} to {MAX_API_KEY_LENGTH}",
            hint=hint,
        )
    bad = next((c for c in key if not ("\x21" <= c <= "\x7e")), None)
    if bad is not None:
        raise MmshipError(
            f"the API key holds the character {bad!r}; keys are printable ASCII without spaces "
            "(they travel in an Authorization header)",
            hint=hint,
        )
    return key


class ServerSettings(BaseModel):
    """How ``mmship serve`` listens, batches and protects itself."""

    # hide_input_in_errors: a refused API key never appears in a validation message.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    precision: str | None = None
    runtime: str | None = Field(None, description="inference runtime to serve (default: the build's choice per tower)")
    max_batch_size: int | None = Field(None, ge=1)
    max_delay_ms: float | None = Field(None, ge=0)
    max_queue_rows: int = Field(256, ge=1, description="rows waiting per graph before 503")
    request_timeout_s: float = Field(30.0, gt=0, description="per-request deadline (504 after)")
    latency_budget_ms: float = Field(
        DEFAULT_BUDGET_MS, gt=0,
        description="refuse a request at arrival (503, body unread) when its estimated latency is over this",
    )
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="largest image (width x height), checked on the decoded size and on the resize target"
    )
    max_request_pixels: int = Field(
        100_000_000, ge=1, description="pixels of all images of one request (decoded, and again after resizing)"
    )
    max_aspect_ratio: float = Field(100.0, ge=1, description="longest side over shortest side of an image")
    jpeg_scaled_decode: bool = Field(
        False, description="decode JPEGs at least twice the model's input size at 1/2, 1/4 or 1/8 scale "
        "(~8x faster on phone photos; pixels no longer bit-identical to the HF processor's)",
    )
    max_request_text_chars: int = Field(
        100_000, ge=1, description="characters of all texts of one request (labels put into the template included)"
    )
    max_items_per_request: int = Field(256, ge=1, description="images + texts + raw-tensor rows of one request")
    label_cache_entries: int = Field(
        DEFAULT_MAX_ENTRIES, ge=0, description="label embeddings /classify and /rank keep (0: no cache)"
    )
    label_cache_bytes: int = Field(DEFAULT_MAX_BYTES, ge=0, description="bytes the label-embedding cache may hold")
    preprocess_workers: int = Field(2, ge=1)
    threads: int | None = Field(None, ge=1, description="onnxruntime threads per session")
    streams: int = Field(
        1, ge=1, le=64,
        description="batches each graph runs at once, the threads split between them (OpenVINO graphs; 1: one batch on every thread)",
    )
    accelerator: str | None = Field(None, description="cpu, cuda or tensorrt (default: the bundle's, if present)")
    api_key: SecretStr | None = None
    insecure: bool = False
    memory_log: str | None = None
    memory_log_interval_s: float = 5.0
    drain_timeout_s: float = 30.0
    url_fetch: UrlFetchSettings = Field(default_factory=UrlFetchSettings, description="image URL fetching (off: no hosts)")

    @field_validator("api_key")
    @classmethod
    def _key_is_usable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                check_api_key(value.get_secret_value())
            except MmshipError as exc:
                raise ValueError(f"{exc.message}. Fix: {exc.hint}") from None
        return value

    @model_validator(mode="after")
    def _items_fit_the_queue(self) -> ServerSettings:
        if self.max_items_per_request > self.max_queue_rows:
            raise ValueError(
                f"max_items_per_request ({self.max_items_per_request}) is larger than max_queue_rows "
                f"({self.max_queue_rows}): such a request could never be queued. Fix: raise --max-queue or lower --max-items"
            )
        return self

    def is_loopback(self) -> bool:
        """True when the server binds only the loopback interface."""
        if self.host in {"localhost"}:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_safe(self) -> None:
        """Refuse a non-loopback bind without an API key unless ``insecure``."""
        if not self.is_loopback() and self.api_key is None and not self.insecure:
            raise MmshipError(
                f"refusing to serve on {self.host} without an API key: anyone who can reach this "
                "address could use the model",
                hint="pass --api-key KEY (or MMSHIP_API_KEY), bind 127.0.0.1, or pass --insecure "
                "if the network is yours alone",
            )
