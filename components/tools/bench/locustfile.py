"""The seed's client for Locust: loop on one endpoint with a think time (set by the bench)."""

from __future__ import annotations

import os

from locust import HttpUser, between, task

THINK_S = float(os.environ.get("TUNEDSTACK_THINK_S", "30"))
PATH = os.environ.get("TUNEDSTACK_PATH", "/hits")
TIMEOUT_S = float(os.environ.get("TUNEDSTACK_TIMEOUT_S", "30"))
# The sample app writes on /hits only for requests that carry the box's token.
HEADERS = {"X-Tunedstack-Token": os.environ.get("TUNEDSTACK_HITS_TOKEN", "")}


class SeedClient(HttpUser):
    # Spread around the think time so clients do not fire in lockstep.
    wait_time = between(THINK_S * 0.5, THINK_S * 1.5)

    @task
    def read_write(self) -> None:
        self.client.get(PATH, name=PATH, timeout=TIMEOUT_S, headers=HEADERS)
