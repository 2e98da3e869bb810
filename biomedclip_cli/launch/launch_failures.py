"""Why a launch stopped, read from the error file torch's elastic launcher writes, as one line a person can act on.

torch.distributed.run records the exception that ended it (its own, such as a rendezvous timeout,
or the first failed rank's, when that rank used `@record`) in the JSON file named by
TORCHELASTIC_ERROR_FILE. bmclip sets that variable for every launch it supervises and reads the file
afterwards, so a node that gave up waiting for its peers says how many arrived and where, and a
failed run names the first exception of the first rank that failed, not the errors of the ranks
that then lost their peer (bmclip's worker runs under `@record`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.launch.launcher import rendezvous_address
from biomedclip_cli.problems import Problem, error
from biomedclip_cli.rank.protocol import RANK_LOGS

# torch's messages when a rendezvous does not complete (torch 2.x, static TCPStore and c10d backends).
STATIC_HOST_TIMEOUT = re.compile(r"waiting for clients\. (?P<joined>\d+)/(?P<expected>\d+) clients joined")
CLIENT_TIMEOUT = re.compile(r"client socket has timed out after .* while trying to connect to \((?P<host>[^,]+), (?P<port>\d+)\)")
C10D_TIMEOUT = "RendezvousTimeoutError"
C10D_UNREACHABLE = "RendezvousConnectionError"
FRAME = re.compile(r'File "([^"]+)", line (\d+)')
# What gloo and NCCL say when the process at the other end of a connection is gone.
PEER_LOST = re.compile(r"Connection reset by peer|Connection closed by peer|Broken pipe|NCCL communicator was aborted|"
                       r"remote process exited")
RANK_HEADER = re.compile(r"^bmclip: rank (?P<rank>\d+) on node (?P<node>\d+) \(", re.MULTILINE)
TRACEBACK = "Traceback (most recent call last)"
MODULE_PATH = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*: )")  # 'package.module.' before 'Type: message' (a data worker's)


@dataclass(frozen=True)
class LauncherFailure:
    """What ended a launch: the exception's 'Type: message', its traceback, and the global rank that raised it (when a rank did)."""

    message: str
    callstack: str = ""
    rank: str | None = None
    timestamp: int | None = None  # when it was recorded, seconds since the epoch

    def cause(self) -> str:
        """The root cause in one line: the original exception (a data-loading worker's, not its wrapper),
        where it was raised, by which rank."""
        lines = [line.strip() for line in self.message.splitlines() if line.strip()]
        exception = MODULE_PATH.sub("", lines[-1] if lines else self.message)
        frames = [frame for frame in FRAME.findall(self.message) or FRAME.findall(self.callstack) if not frame[0].startswith("<")]
        context = [f"{Path(frames[-1][0]).name}:{frames[-1][1]}"] if frames else []
        context += [f"rank {self.rank}"] if self.rank is not None else []
        return f"{exception} ({', '.join(context)})" if context else exception


def launcher_failure(error_file: Path) -> LauncherFailure | None:
    """The exception that ended the launcher, from its error file; None when it wrote none."""
    try:
        record = json.loads(error_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    message = record.get("message") if isinstance(record, dict) else None
    extra: dict[str, object] = {}
    if isinstance(message, dict):
        info = message.get("extraInfo")
        extra = info if isinstance(info, dict) else {}
        message = message.get("message")
    if not isinstance(message, str) or not message.strip():
        return None
    rank, stamp = extra.get("rank"), str(extra.get("timestamp", ""))
    return LauncherFailure(message.strip(), str(extra.get("py_callstack", "")), str(rank) if rank is not None else None,
                           int(stamp) if stamp.isdigit() else None)


def cause_in_words(failure: LauncherFailure, config: TrainConfig, run_dir: Path) -> str:
    """The one cause line of a failed launch: a lost node named as such, else the failed rank's exception."""
    return lost_peer_cause(failure, config, run_dir) or failure.cause()


@dataclass(frozen=True)
class RankEnding:
    """How one rank's last launch ended, as its log in the run folder's ranks/ tells: its node, and whether it wrote a traceback."""

    rank: int
    node: int
    failed: bool


def rank_endings(run_dir: Path) -> list[RankEnding]:
    """The ranks whose logs are in the run folder (each launch starts a rank's log with RANK_LOG_HEADER), by rank."""
    endings = []
    for log in (run_dir / RANK_LOGS).glob("rank-*.log"):
        text = log.read_text(encoding="utf-8", errors="replace")
        headers = list(RANK_HEADER.finditer(text))
        if headers:
            last = headers[-1]
            endings.append(RankEnding(int(last["rank"]), int(last["node"]), TRACEBACK in text[last.end():]))
    return sorted(endings, key=lambda ending: ending.rank)


def lost_peer_cause(failure: LauncherFailure, config: TrainConfig, run_dir: Path) -> str | None:
    """The cause of a multi-node run whose rank lost its connection to a peer, in words: which node stopped first and how;
    None when the failure is something else."""
    lost = PEER_LOST.search(failure.message)
    if config.nnodes == 1 or lost is None:
        return None
    seen = f"rank {failure.rank}" if failure.rank is not None else "a rank of this node"
    endings = rank_endings(run_dir)
    own = next((ending.node for ending in endings if str(ending.rank) == failure.rank), None)
    nodes: dict[int, list[RankEnding]] = {}
    for ending in endings:
        if ending.node != own:
            nodes.setdefault(ending.node, []).append(ending)
    failed = {node: ranks for node, ranks in nodes.items() if any(ending.failed for ending in ranks)}
    silent = {node: ranks for node, ranks in nodes.items() if node not in failed}
    connection = f"{seen} lost its connection to it ({lost.group(0)})"
    if failed:
        node, ranks = min(failed.items())
        log = run_dir / RANK_LOGS / f"rank-{next(ending.rank for ending in ranks if ending.failed)}.log"
        return f"{_named(node, ranks)} failed with an error of its own, in {log} and that node's summary; {connection}"
    if silent:
        named = " and ".join(_named(node, ranks) for node, ranks in sorted(silent.items()))
        return f"{named} stopped without an error of its own: killed, out of memory, or its machine lost; {connection}"
    return (f"another node stopped (killed, out of memory, its machine lost, or an error of its own: see the other nodes' summaries); "
            f"{connection}")


def _named(node: int, ranks: list[RankEnding]) -> str:
    numbers = ", ".join(str(ending.rank) for ending in ranks)
    return f"node {node} (rank{'s' if len(ranks) > 1 else ''} {numbers})"


def rendezvous_problem(config: TrainConfig, failure: str) -> Problem | None:
    """The one-line error for a node whose peers did not all arrive within --rdzv-timeout; None for any other failure."""
    endpoint = config.rdzv_endpoint or ""
    waited = f"within --rdzv-timeout {config.rdzv_timeout} s"
    expected = config.nnodes
    if match := STATIC_HOST_TIMEOUT.search(failure):
        expected = int(match["expected"])
        what = f"{int(match['joined'])} of {expected} nodes joined at {endpoint} {waited}"
    elif match := CLIENT_TIMEOUT.search(failure):
        what = f"node 0 did not answer at {match['host']}:{match['port']} {waited}, so 1 of {expected} nodes (this one) had joined"
    elif failure.startswith(C10D_TIMEOUT):
        arrived = "1" if expected == 2 else "fewer than"
        what = f"{arrived} of {expected} nodes joined the rendezvous '{config.rdzv_id or config.name}' at {endpoint} {waited}"
    elif failure.startswith(C10D_UNREACHABLE):
        what = f"the rendezvous host at {endpoint} could not be reached {waited}, so 1 of {expected} nodes (this one) had joined"
    else:
        return None
    host, port = rendezvous_address(endpoint) or (endpoint, None)
    return error("--rdzv-endpoint", what,
                 f"start the same command on every node (--nnodes {expected}, --rdzv-endpoint {endpoint}), check that {host} is this "
                 f"job's first node and that port {port or 'PORT'} is reachable from here (firewall, address), or raise --rdzv-timeout")
