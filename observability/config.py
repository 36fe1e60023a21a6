"""What observability reads from the service's settings: a protocol this package owns.

The service's own settings object fits it as it is (only its shape matters), so this
package never imports the service that uses it.
"""

from __future__ import annotations

from typing import Protocol


class ObservabilitySettings(Protocol):
    """The settings logs, traces, metrics and /debug are configured from (read-only)."""

    @property
    def log_format(self) -> str: ...

    @property
    def log_level(self) -> str: ...

    @property
    def debug_token(self) -> str | None: ...

    @property
    def deployment_environment(self) -> str: ...

    @property
    def trace_slow_threshold_ms(self) -> float: ...

    @property
    def trace_sample_ratio(self) -> float: ...

    @property
    def db_pool_size(self) -> int: ...

    @property
    def web_concurrency(self) -> int: ...

    @property
    def password_hash_concurrency(self) -> int: ...

    @property
    def password_hash_queue(self) -> int: ...
