"""What every request needs, built once per app: the store, settings, scoring models and routing policy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from api.batcher import Prescorer
from scoring.settings import Settings
from scoring.store import Store
from scoring.usecases.registry import ModelProvider


@dataclass
class AppContext:
    settings: Settings
    store: Store
    models: ModelProvider
    policy: Any | None = None  # scoring.policy.RoutingPolicy when routing is available
    prescorer: Prescorer = field(default_factory=Prescorer)
    jobs: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="batch-job"))
