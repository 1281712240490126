"""Two deployments pointed at the same RabbitMQ vhost would consume each other's
messages: the second one refuses to start and says why."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from postwire_testkit.infra import migrated_database
from postwire_testkit.platform import PlatformProcess


async def test_a_second_deployment_on_the_same_vhost_refuses_to_start(
    env: dict[str, str], platform: PlatformProcess, log_dir: Path
) -> None:
    async with migrated_database() as other_database:
        intruder = PlatformProcess(
            ["events"], {**env, "POSTWIRE_DATABASE_URL": other_database}, log_dir
        )
        try:
            with pytest.raises(RuntimeError, match="exited"):
                intruder.start(timeout=60)
        finally:
            code = intruder.stop()  # had it started, it must not outlive the test
        assert "belongs to another postwire deployment" in intruder.log_tail()
        assert code == 3
    # The first deployment is untouched.
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{platform.url}/readyz")).status_code == 200
