"""The samples a run skipped because they could not be read: <run>/bad-samples.tsv, one line per distinct sample.

Columns: source (the CSV file or the shard), sample (the image path or the shard's key), reason,
rank. Every process that reads data (each rank and each of its data-loading workers, on every
node) appends to a file of its own under <run>/bad-samples/, so no two processes write one file;
node 0 merges them into bad-samples.tsv when training ends. A sample that fails in every epoch is
listed once.

An hf:// shard given up after its retries (hub/given_up.py, whose records a rank keeps in the same
folder) is one row: the shard, "(rest of the shard)", and a reason saying how many samples it had
delivered and about how many were lost. The sample the failure cut in the middle is not listed on
its own (it would read "no caption"): the shard's row accounts for it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from biomedclip_cli.hub.given_up import GivenUpShards, shard_identity
from biomedclip_cli.partial_files import write_atomically

BAD_SAMPLES_FILE = "bad-samples.tsv"
BAD_SAMPLES_PARTS = "bad-samples"
HEADER = "source\tsample\treason\trank"
UNSAFE_IN_A_FIELD = re.compile(r"[\t\r\n]+")
REST_OF_SHARD = "(rest of the shard)"


@dataclass(frozen=True)
class BadSample:
    """One sample training skipped: where it comes from, which it is, why, and the rank that met it."""

    source: str
    sample: str
    reason: str
    rank: int

    def line(self) -> str:
        """The sample as one TSV line (tabs and line breaks inside a field become spaces)."""
        return "\t".join(UNSAFE_IN_A_FIELD.sub(" ", str(value)) for value in (self.source, self.sample, self.reason, self.rank))

    def identity(self) -> tuple[str, str]:
        return self.source, self.sample


def bad_sample_limit(max_bad_samples: float, samples: int) -> int:
    """The most unreadable samples a run skips: --max-bad-samples as a count (1 and above), or that fraction of `samples`."""
    return int(max_bad_samples) if max_bad_samples >= 1 else int(max_bad_samples * samples)


def given_up_folder(run_dir: Path | None) -> Path | None:
    """Where a rank's processes record the hf:// shards they give up (`register_hf_scheme(given_up_folder(run_dir))`)."""
    return run_dir / BAD_SAMPLES_PARTS if run_dir is not None else None


def cut_by_give_up(run_dir: Path, source: str, sample: str) -> bool:
    """Whether `sample` of `source` is the one a given-up shard's failure cut in the middle (its shard's row accounts for it)."""
    record = GivenUpShards(run_dir / BAD_SAMPLES_PARTS).find(source)
    return record is not None and record.cut_sample == sample


def record_bad_sample(run_dir: Path, sample: BadSample, writer: str) -> None:
    """Append the sample to this process's own part file (`writer` names the process: unique among all that read data)."""
    folder = run_dir / BAD_SAMPLES_PARTS
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{writer}.tsv").open("a", encoding="utf-8") as part:
        part.write(sample.line() + "\n")


def recorded_bad_samples(run_dir: Path) -> list[BadSample]:
    """Every distinct sample the run has skipped so far (the merged list and the parts not yet merged), first met first."""
    files = [run_dir / BAD_SAMPLES_FILE, *sorted((run_dir / BAD_SAMPLES_PARTS).glob("*.tsv"))]
    found: dict[tuple[str, str], BadSample] = {}
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split("\t")
            if len(fields) == 4 and line != HEADER and fields[3].isdigit():
                sample = BadSample(fields[0], fields[1], fields[2], int(fields[3]))
                found.setdefault(sample.identity(), sample)
    for shard in GivenUpShards(run_dir / BAD_SAMPLES_PARTS).records():
        row = BadSample(shard_identity(shard.url), REST_OF_SHARD, shard.reason(), shard.rank)
        found.setdefault(row.identity(), row)
    return list(found.values())


def merge_bad_samples(run_dir: Path) -> list[BadSample]:
    """Write bad-samples.tsv from everything recorded (whole, never half-written), remove the merged parts; the samples.

    Call once training has ended, from the process that owns the run folder (node 0's).
    """
    samples = recorded_bad_samples(run_dir)
    parts = sorted((run_dir / BAD_SAMPLES_PARTS).glob("*.tsv"))
    if samples:
        write_atomically(run_dir / BAD_SAMPLES_FILE, "\n".join([HEADER, *(sample.line() for sample in samples)]) + "\n")
    for part in parts:
        part.unlink(missing_ok=True)
    GivenUpShards(run_dir / BAD_SAMPLES_PARTS).remove()
    with contextlib.suppress(OSError):  # absent, or a part written since (a process still running)
        (run_dir / BAD_SAMPLES_PARTS).rmdir()
    return samples
