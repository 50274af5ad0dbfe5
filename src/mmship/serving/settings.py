"""Settings of the local inference server (``mmship serve`` flags, deploy config)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mmship.core.errors import MmshipError
from mmship.serving.url_fetch import UrlFetchSettings


class ServerSettings(BaseModel):
    """How ``mmship serve`` listens, batches and protects itself."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    precision: str | None = None
    max_batch_size: int | None = Field(None, ge=1)
    max_delay_ms: float | None = Field(None, ge=0)
    max_queue_rows: int = Field(256, ge=1, description="rows waiting per graph before 503")
    request_timeout_s: float = Field(30.0, gt=0, description="per-request deadline (504 after)")
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1, description="decompression-bomb cap")
    max_items_per_request: int = Field(256, ge=1)
    preprocess_workers: int = Field(2, ge=1)
    threads: int | None = Field(None, ge=1, description="onnxruntime threads per session")
    accelerator: str | None = Field(None, description="cpu, cuda or tensorrt (default: the bundle's, if present)")
    api_key: SecretStr | None = None
    insecure: bool = False
    memory_log: str | None = None
    memory_log_interval_s: float = 5.0
    drain_timeout_s: float = 30.0
    url_fetch: UrlFetchSettings = Field(default_factory=UrlFetchSettings, description="image URL fetching (off: no hosts)")

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
