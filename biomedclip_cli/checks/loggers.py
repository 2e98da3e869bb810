"""Logger checks: the packages --report-to names are installed, and W&B in online mode has a login.

open_clip_train discovers both only after loading the model and the data (an assert, or W&B asking
for a key in the middle of a multi-GPU job). The login is looked for where W&B looks: the
WANDB_API_KEY / WANDB_IDENTITY_TOKEN_FILE variables, the .netrc entry `wandb login` writes, and
W&B's settings files. Whether a key exists is all that is checked; no key is read out or printed.
"""

from __future__ import annotations

import configparser
import importlib.util
import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.problems import Problem, error

OFFLINE_MODES = ("offline", "dryrun", "disabled")
DEFAULT_WANDB_HOST = "https://api.wandb.ai"
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def report_targets(config: TrainConfig) -> list[str]:
    """The loggers --report-to names (tensorboard, wandb)."""
    return [target for target in config.report_to.split(",") if target]


def _wandb_settings_files() -> list[Path]:
    config_dir = Path(os.environ.get("WANDB_CONFIG_DIR", "~/.config/wandb")).expanduser()
    return [config_dir / "settings", Path("wandb") / "settings"]


def wandb_setting(name: str) -> str | None:
    """A value from W&B's settings files (global, then this folder's wandb/settings, which wins), e.g. `mode` after `wandb offline`."""
    value = None
    for path in _wandb_settings_files():
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        if parser.has_option("default", name):
            value = parser.get("default", name)
    return value


def wandb_mode() -> str:
    """online, offline, dryrun or disabled: WANDB_MODE, WANDB_DISABLED, then the settings files."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"].lower()
    if os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1"):
        return "disabled"
    return (wandb_setting("mode") or "online").lower()


def _netrc_has_login(host: str) -> bool:
    path = Path(os.environ["NETRC"]).expanduser() if os.environ.get("NETRC") else next(
        (p for p in (Path("~/.netrc").expanduser(), Path("~/_netrc").expanduser()) if p.exists()), None)
    if path is None or not path.is_file():
        return False
    try:
        entry = netrc.netrc(path).authenticators(urlsplit(host).netloc)
    except (netrc.NetrcParseError, OSError):
        return False
    return bool(entry and entry[2])


def wandb_login_found() -> bool:
    """Whether W&B will find credentials for its server (WANDB_BASE_URL, default api.wandb.ai) without asking."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = os.environ.get("WANDB_BASE_URL") or wandb_setting("base_url") or DEFAULT_WANDB_HOST
    return _netrc_has_login(host) or bool(wandb_setting("api_key"))


def check_loggers(config: TrainConfig) -> list[Problem]:
    """Problems with --report-to: a logger that is not installed, or W&B online without a login."""
    targets = report_targets(config)
    for target in targets:
        if importlib.util.find_spec(PACKAGES[target]) is None:
            return [error("--report-to", f"{target} is not installed here", f"pip install {PACKAGES[target]}, or drop it from --report-to",
                          local_only=True)]
    if "wandb" in targets and wandb_mode() not in OFFLINE_MODES and not wandb_login_found():
        return [error("--report-to", "wandb is in online mode but no W&B login was found (no WANDB_API_KEY, no .netrc entry)",
                      "run `wandb login` once, export WANDB_API_KEY, or set WANDB_MODE=offline to log locally and `wandb sync` later",
                      local_only=True)]
    return []
