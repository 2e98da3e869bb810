"""Why a launch stopped, read from the error file torch's elastic launcher writes, as one line a person can act on.

torch.distributed.run records the exception that ended it (its own, such as a rendezvous timeout,
or the first failed rank's, when that rank used `@record`) in the JSON file named by
TORCHELASTIC_ERROR_FILE. bmclip sets that variable for every launch it supervises and reads the file
afterwards, so a node that gave up waiting for its peers says how many arrived and where.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.launch.launcher import rendezvous_address
from biomedclip_cli.problems import Problem, error

ERROR_FILE_VARIABLE = "TORCHELASTIC_ERROR_FILE"
# torch's messages when a rendezvous does not complete (torch 2.x, static TCPStore and c10d backends).
STATIC_HOST_TIMEOUT = re.compile(r"waiting for clients\. (?P<joined>\d+)/(?P<expected>\d+) clients joined")
CLIENT_TIMEOUT = re.compile(r"client socket has timed out after .* while trying to connect to \((?P<host>[^,]+), (?P<port>\d+)\)")
C10D_TIMEOUT = "RendezvousTimeoutError"
C10D_UNREACHABLE = "RendezvousConnectionError"


def launcher_failure(error_file: Path) -> str | None:
    """The exception that ended the launcher, as 'Type: message' from its error file; None when it wrote none."""
    try:
        record = json.loads(error_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    message = record.get("message") if isinstance(record, dict) else None
    if isinstance(message, dict):
        message = message.get("message")
    return message.strip() if isinstance(message, str) and message.strip() else None


def rendezvous_problem(config: TrainConfig, failure: str) -> Problem | None:
    """The one-line error for a node whose peers did not all arrive within --rdzv-timeout; None for any other failure."""
    endpoint = config.rdzv_endpoint or ""
    waited = f"within --rdzv-timeout {config.rdzv_timeout} s"
    expected = config.nnodes
    if match := STATIC_HOST_TIMEOUT.search(failure):
        joined, expected = int(match["joined"]), int(match["expected"])
        what = f"{joined} of {expected} nodes joined at {endpoint} {waited}"
    elif match := CLIENT_TIMEOUT.search(failure):
        what = f"node 0 did not answer at {match['host']}:{match['port']} {waited}, so 1 of {expected} nodes (this one) had joined"
    elif failure.startswith(C10D_TIMEOUT):
        joined = "1" if expected == 2 else "fewer than"
        what = f"{joined} of {expected} nodes joined the rendezvous '{config.rdzv_id or config.name}' at {endpoint} {waited}"
    elif failure.startswith(C10D_UNREACHABLE):
        what = f"the rendezvous host at {endpoint} could not be reached {waited}, so 1 of {expected} nodes (this one) had joined"
    else:
        return None
    host, port = rendezvous_address(endpoint) or (endpoint, None)
    return error("--rdzv-endpoint", what,
                 f"start the same command on every node (--nnodes {expected}, --rdzv-endpoint {endpoint}), check that {host} is this "
                 f"job's first node and that port {port or 'PORT'} is reachable from here (firewall, address), or raise --rdzv-timeout")
