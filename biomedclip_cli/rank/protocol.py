"""What the launching bmclip process and the ranks agree on: the worker's command line and the environment variables between them.

A leaf of the rank package (no imports), so that the parent's modules (launch/, jobs/) can name these without importing what a rank runs.
"""

from __future__ import annotations

WORKER_MODULE = "biomedclip_cli.rank.worker"
SETTINGS_OPTION = "--settings"  # the worker's one option: the run's settings for the ranks, as one JSON document (rank/settings.py)
OPEN_CLIP_RESUME_LATEST = "latest"  # open_clip's --resume value that the worker answers with the run's newest complete checkpoint

ERROR_FILE_VARIABLE = "TORCHELASTIC_ERROR_FILE"  # where torchrun and the first failed rank record the exception that ended a launch
CONSOLE_VARIABLE = "BMCLIP_CONSOLE"  # the FIFO bmclip reads and copies to its console (rank/console.py)
CONSOLE_TTY_VARIABLE = "BMCLIP_CONSOLE_TTY"  # set when that console is a terminal
VERBOSE_VARIABLE = "BMCLIP_VERBOSE"  # show open_clip's own log lines instead of bmclip's progress
RANK_LOGS = "ranks"  # the run folder's subfolder of every rank's output
FAILURE_RECORD_VARIABLE = "BMCLIP_FAILURE_RECORD"  # a copy of a rank's error record in the run folder (a SLURM job's cause)
RANK_LOG_HEADER = "bmclip: rank {rank} on node {node} ({host}, pid {pid})"  # the first line of each launch in a rank's log
RUN_CONFIG_VARIABLE = "BMCLIP_RUN_CONFIG"  # bmclip.yaml's text, handed to global rank 0 on several nodes (rank/handover.py)
LAUNCH_RECORD_VARIABLE = "BMCLIP_LAUNCH_RECORD"  # this node's launch record, likewise
