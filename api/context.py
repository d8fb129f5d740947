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
    policy: Any | None = None  # scoring.policy.RoutingPolicy, or a list of them (one per rubric)
    prescorer: Prescorer = field(default_factory=Prescorer)
    jobs: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="batch-job"))
    policies: dict[str | None, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from scoring.usecases.registry import policies_by_rubric

        self.policies = policies_by_rubric(self.store, self.models, self.policy)
        if isinstance(self.policy, list | tuple):
            self.policy = self.policies.get(None)

    def policy_for(self, rubric_id: str) -> Any | None:
        """The routing policy of a rubric: the one the server was started with for it, else the one kept
        with the model version that scores it (the registry's promoted one, or ``--model``), else a policy
        for every rubric; None: every criterion goes to a person."""
        if rubric_id in self.policies:
            return self.policies[rubric_id]
        from scoring.usecases.registry import registry_policy

        return registry_policy(self.models, rubric_id) or self.policies.get(None)

    def policy_of_item(self, item: Any) -> Any | None:
        """The policy of a queue item's rubric (its adjudication gap decides what needs adjudication)."""
        return self.policy_for(self.store.submission(item.submission_id).rubric_id)
