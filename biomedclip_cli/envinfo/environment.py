"""One env-check pass: probe the driver, choose the PyTorch build, run every check."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from biomedclip_cli.envinfo.compat import packaged_table
from biomedclip_cli.envinfo.machine_checks import (
    Check,
    Status,
    disk_check,
    driver_check,
    hf_token_check,
    nccl_check,
    python_check,
    recommendation_check,
)
from biomedclip_cli.envinfo.nvidia_smi import DriverReport, probe
from biomedclip_cli.envinfo.policy import Advice, advise
from biomedclip_cli.envinfo.stack_checks import installed_checks


@dataclass(frozen=True)
class Environment:
    """Everything env-check found: the table it used, the driver, the advice and the checks."""

    table_date: str
    python: str
    driver: DriverReport
    advice: Advice
    checks: tuple[Check, ...]

    @property
    def failed(self) -> bool:
        """Whether any check failed (env-check then exits with status 1)."""
        return any(check.status is Status.FAIL for check in self.checks)

    def as_dict(self) -> dict:
        """The whole result as plain JSON-ready values (what --json prints)."""
        return {"table_date": self.table_date, "python": self.python, "driver": self.driver.as_dict(), **self.advice.as_dict(),
                "checks": [check.as_dict() for check in self.checks], "failed": self.failed}


def examine(logs: Path) -> Environment:
    """Probe this machine, choose the PyTorch build for it and run the checks (`logs`: where run folders go)."""
    table = packaged_table()
    driver = probe()
    advice = advise(table, driver)
    checks = [driver_check(driver), recommendation_check(advice), python_check(advice), *installed_checks(table, driver, advice),
              nccl_check(), disk_check(logs), hf_token_check()]
    return Environment(table.date, platform.python_version(), driver, advice, tuple(checks))
