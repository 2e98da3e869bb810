"""The run state a node's bmclip process hands to global rank 0 when a run spans several nodes.

On one node, bmclip's own process holds global rank 0's node, so it writes bmclip.yaml and
launch.json itself before launching. On several nodes it cannot know that in advance (c10d
numbers the nodes only when they meet), and a node that wrote them before meeting its peers
would make the others find an "existing" run folder. So every node's process passes the state
to its ranks in the environment, and the rank that turns out to be global rank 0 writes it once
all nodes have met. The variables are set only by the supervised launch: a pasted --dry-run line
writes no run state, as on one node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from biomedclip_cli.rank.protocol import LAUNCH_RECORD_VARIABLE, RUN_CONFIG_VARIABLE
from biomedclip_cli.runs.folder import LaunchRecord
from biomedclip_cli.runs.run_folder import RunFolder


def handover_environment(config_text: str, record: LaunchRecord) -> dict[str, str]:
    """The variables that carry bmclip.yaml's text and this node's launch record to its ranks."""
    return {RUN_CONFIG_VARIABLE: config_text, LAUNCH_RECORD_VARIABLE: json.dumps(asdict(record))}


def publish_handed_over_state(run_dir: Path, environ: Mapping[str, str]) -> bool:
    """Write the run state handed over in `environ` to `run_dir` (call in global rank 0 only); False when none was handed over."""
    text, record = environ.get(RUN_CONFIG_VARIABLE), environ.get(LAUNCH_RECORD_VARIABLE)
    if text is None or record is None:
        return False
    RunFolder(run_dir).publish(text, LaunchRecord(**json.loads(record)))
    return True
