"""Preflight: resolve every `auto` value of a TrainConfig and collect the problems, before anything launches."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from biomedclip_cli.checks.hardware import check_hardware
from biomedclip_cli.checks.loggers import check_loggers
from biomedclip_cli.config import RESUME_AUTO, DatasetType, Precision, Preset, ResolvedConfig, TrainConfig, flag
from biomedclip_cli.data.csv_inspection import check_csv_columns, check_image_paths, read_csv_head
from biomedclip_cli.data.locations import is_remote, sources, suffix_type
from biomedclip_cli.data.pixel_survey import SURVEY_IMAGES, SampleImage, survey_findings, survey_images
from biomedclip_cli.data.shard_inspection import ShardSet, check_first_samples, check_shards, inspect_shards, read_source_starts
from biomedclip_cli.data.shard_writer import SHARD_IMAGE_KEYS
from biomedclip_cli.disk_space import free_bytes, human_size
from biomedclip_cli.hub.biomedica import expand_shortcuts
from biomedclip_cli.hub.paths import is_hub_url
from biomedclip_cli.hub.remote_shards import check_hub_file_urls
from biomedclip_cli.launch.launcher import rendezvous_address
from biomedclip_cli.launch.openclip_args import OPEN_CLIP_RESUME_LATEST, check_extra_args, openclip_argv, parse_with_open_clip
from biomedclip_cli.launch.presets import Hardware, PresetChoice, preset_choice
from biomedclip_cli.models.config_lookup import HUB_PREFIX, LOCAL_PREFIX, brings_own_weights, local_folder
from biomedclip_cli.models.validation import (
    check_fine_tuning_traps,
    check_model,
    check_pretrained_file,
    check_val_zeroshot,
    image_tower_is_vit,
)
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.problems import Problem, ProblemFound, Severity, error, warning
from biomedclip_cli.runs.checkpoints import newest_complete_checkpoint
from biomedclip_cli.runs.folder import CHECKPOINT_DIR, epoch_checkpoints
from biomedclip_cli.runs.run_folder import RunFolder
from biomedclip_cli.sample_filter import DOCS as SELECTION_DOCS
from biomedclip_cli.sample_filter import metadata_object, unknown_field_warnings

SCRATCH_LR = 5e-4
FINE_TUNE_LR = 5e-6
RUN_MARKERS = ("bmclip.yaml", "out.log", CHECKPOINT_DIR)
RESUME_FROM_RUN_FOLDER = (RESUME_AUTO, OPEN_CLIP_RESUME_LATEST)


@dataclass(frozen=True)
class LaunchSite:
    """Where a run will launch, as preflight judges it: the node's GPUs, and how much of that this machine can check.

    `gpus` are the GPUs of one node (installed here: `installed_gpus` as nvidia-smi lists them, None when not checked;
    `bf16` whether they compute in bfloat16, None when unknown). `dry_run`: the command is only printed, so hardware and W&B
    login problems are warnings (commands are often prepared away from the GPUs). `elsewhere` (slurm-gen --remote-paths):
    what is only absent from this machine is a warning, and a CSV not readable here needs --csv-separator. `slurm`: a SLURM
    job, whose srun gives the nodes their rendezvous, prepared without torch (its job resolves --resume auto each time it starts).
    """

    gpus: int
    installed_gpus: int | None = None
    bf16: bool | None = None
    dry_run: bool = False
    elsewhere: bool = False
    slurm: bool = False


@dataclass
class Preflight:
    """The plan's config, resolved and validated as a whole (None when a problem kept it from resolving), everything found wrong
    (errors stop the launch), what --preset chose, and lines worth saying before the run starts."""

    config: ResolvedConfig | None
    problems: list[Problem] = field(default_factory=list)
    preset: PresetChoice | None = None
    notes: list[str] = field(default_factory=list)


class Resolution:
    """The values preflight has decided so far on top of the config as given; `view()` is the config with them."""

    def __init__(self, given: TrainConfig) -> None:
        self.given = given
        self.values: dict[str, object] = {}
        self.problems: list[Problem] = []
        self.first_images: list[SampleImage] = []
        self.first_metadata: list[dict[str, Any]] = []  # the json objects of the first training samples (shards)

    def update(self, values: dict[str, object]) -> None:
        """Decide these values (later decisions win)."""
        self.values.update(values)

    def view(self) -> TrainConfig:
        """The config as given with the values decided so far (not validated: preflight's helpers read it, resolved() validates)."""
        return self.given.model_copy(update=self.values)

    def resolved(self) -> ResolvedConfig | None:
        """Every value validated together as a ResolvedConfig, so the config's rules run on what resolution made; None, with the
        problem added, when they break one."""
        try:
            return ResolvedConfig.model_validate({**self.given.model_dump(), **self.values})
        except ProblemFound as found:
            self.problems.append(found.problem)
        except ValidationError as exc:
            first = exc.errors()[0]
            self.problems.append(error(flag(str(first["loc"][0])) if first["loc"] else "config", str(first["msg"])))
        return None


def default_run_name(model: str, now: datetime) -> str:
    """A readable, sortable, unique-per-second run name such as 20261127-071203-ViT-B-32."""
    folder = local_folder(model)
    safe_model = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.resolve().name if folder else model.removeprefix(HUB_PREFIX))
    return f"{now:%Y%m%d-%H%M%S}-{safe_model}"


def _resolve_dataset_type(config: TrainConfig, problems: list[Problem]) -> DatasetType | None:
    if config.dataset_type is not DatasetType.auto:
        return config.dataset_type
    kinds = {suffix_type(source) for source in sources(config.train_data or "")}
    if len(kinds) == 1 and None not in kinds:
        return DatasetType(kinds.pop())
    problems.append(error("--dataset-type", f"cannot tell the dataset type of '{config.train_data}' from its extension",
                          "pass --dataset-type csv or --dataset-type webdataset"))
    return None


def _csv_updates(config: TrainConfig, problems: list[Problem], first_images: list[SampleImage]) -> dict[str, object]:
    separator = config.csv_separator
    for option, data in (("--train-data", config.train_data), ("--val-data", config.val_data)):
        hub_problems = check_hub_file_urls([s for s in sources(data or "") if is_hub_url(s)], config.revision, option)
        if hub_problems:
            problems.extend(hub_problems)
            return {}
        if data is None or is_remote(data):
            continue
        path = Path(data)
        head = read_csv_head(path, separator, option)
        if isinstance(head, Problem):
            problems.append(head)
            return {}
        separator = head.separator
        column_problems = check_csv_columns(head, path, {"--csv-img-key": config.csv_img_key, "--csv-caption-key": config.csv_caption_key})
        if column_problems:
            problems.extend(column_problems)
            return {}
        found = check_image_paths(head, path, config.csv_img_key)
        problems.extend(found)
        if option == "--train-data" and not found:
            first_images += [SampleImage(row[config.csv_img_key].strip()) for row in head.rows[:SURVEY_IMAGES]
                             if not is_remote(row[config.csv_img_key].strip())]
    return {"csv_separator": separator}


def _webdataset_updates(state: Resolution) -> dict[str, object]:
    config, problems = state.view(), state.problems
    updates: dict[str, object] = {}
    resampled = True if config.dataset_resampled is None else config.dataset_resampled
    updates["dataset_resampled"] = resampled
    shards = _checked_shards(config.train_data or "", "--train-data", config.revision, problems, state)
    if config.train_num_samples is None and not shards.problems:
        if shards.num_samples is None:
            problems.append(error("--train-num-samples", "is needed for webdataset shards without a sizes.json or __len__ file beside them "
                                  "(in a hub repo: sizes.json or _info.json)",
                                  "pass the number of samples per epoch, e.g. --train-num-samples 10000"))
        else:
            updates["train_num_samples"] = shards.num_samples
    factors = config.train_data_upsampling_factors
    if factors is not None:
        if not resampled:
            problems.append(error("--train-data-upsampling-factors", "needs sampling with replacement", "drop --no-dataset-resampled"))
        elif len(factors.split("::")) != len(shards.by_source):
            problems.append(error("--train-data-upsampling-factors",
                                  f"has {len(factors.split('::'))} weights for {len(shards.by_source)} sources",
                                  "give one weight per '::'-joined source, e.g. 1::2"))
    if config.val_data is not None:
        _checked_shards(config.val_data, "--val-data", config.revision, problems, None)
    return updates


def _checked_shards(data: str, option: str, revision: str | None, problems: list[Problem], first: Resolution | None) -> ShardSet:
    """Inspect a shard option and add its problems: hub access, missing shards, a first sample open_clip would drop.

    With `first`, the image members and the json metadata of each source's first samples go to its first_images and first_metadata.
    """
    shards = inspect_shards(data, revision, option)
    problems.extend(shards.problems)
    if shards.problems:
        return shards
    problems.extend(check_shards(shards, option, data))
    starts = read_source_starts(shards, option, SURVEY_IMAGES)
    if isinstance(starts, Problem):
        problems.append(starts)
        return shards
    problems.extend(check_first_samples(starts, option))
    if first is not None:
        first.first_images += [SampleImage(f"{start.shard}:{sample.key}.{suffix}", data)
                               for start in starts for sample in start.samples for suffix, data in sample.members.items()
                               if suffix in SHARD_IMAGE_KEYS]
        first.first_metadata += [metadata for start in starts for sample in start.samples
                                 if isinstance(metadata := metadata_object(sample.members.get("json")), dict)]
    return shards


def _selection_notes(state: Resolution) -> list[str]:
    """What --where/--classes keeps of the first training samples; its problems: data without metadata, field names no sample
    has, an epoch length taken from a sizes file that counts every sample."""
    config = state.view()
    where = config.sample_filter()
    if where is None or config.dataset_type is DatasetType.auto:
        return []
    option = "--where" if config.where else "--classes"
    if config.dataset_type is not DatasetType.webdataset:
        state.problems.append(error(option, f"tests the json metadata of webdataset shard samples, and {config.dataset_type.value} data "
                                            "has none", "filter a table once with bmclip prepare-csv TABLE --where EXPR --out "
                                            f"kept.csv and train on that ({SELECTION_DOCS})"))
        return []
    looked = state.first_metadata
    state.problems.extend(unknown_field_warnings(where, looked))
    kept = sum(where.matches(metadata) for metadata in looked)
    if "train_num_samples" in state.values and state.given.train_num_samples is None and config.checkpoint_every_samples is None:
        state.problems.append(warning("--train-num-samples", f"is {config.train_num_samples:,}, every sample the shards hold by "
                                      f"their sizes file, but with {option} an epoch counts kept samples only, so it reads the "
                                      "shards more than once", f"pass --train-num-samples with the samples an epoch should hold "
                                      f"(the kept share times {config.train_num_samples:,})"))
    return [f"{option} keeps {kept} of the first {len(looked)} samples of the shards ({where.text})"] if looked else []


def _expanded_shortcuts(config: TrainConfig, problems: list[Problem]) -> dict[str, object] | None:
    """BIOMEDICA shortcut names in --train-data/--val-data replaced by their hf:// patterns; None after an unknown name."""
    updates: dict[str, object] = {}
    for name, option in (("train_data", "--train-data"), ("val_data", "--val-data")):
        value = getattr(config, name)
        expanded = expand_shortcuts(value, option) if value is not None else value
        if isinstance(expanded, Problem):
            problems.append(expanded)
            return None
        if expanded != value:
            updates[name] = expanded
    return updates


def _revision_problems(config: TrainConfig) -> list[Problem]:
    data = "::".join(d for d in (config.train_data, config.val_data) if d)
    if config.revision and not any(is_hub_url(source) for source in sources(data)):
        return [warning("--revision", "has no effect: no --train-data or --val-data source is an hf:// URL")]
    return []


def _resolve_data(state: Resolution) -> None:
    """BIOMEDICA shortcuts expanded, the dataset type decided, and the CSV's separator or the shards' sample count found."""
    problems = state.problems
    config = state.view()
    if config.train_data is None and config.dataset_type is not DatasetType.synthetic:
        problems.append(error("--train-data", "is missing", "pass a CSV file or a shard pattern, e.g. --train-data data/train.csv"))
        return
    expanded = _expanded_shortcuts(config, problems)
    if expanded is None:
        return
    state.update(expanded)
    problems.extend(_revision_problems(state.view()))
    dataset_type = _resolve_dataset_type(state.view(), problems)
    if dataset_type is None:
        return
    state.update({"dataset_type": dataset_type})
    if dataset_type is DatasetType.csv:
        state.update(_csv_updates(state.view(), problems, state.first_images))
    elif dataset_type is DatasetType.webdataset:
        state.update(_webdataset_updates(state))
    elif config.train_num_samples is None:
        problems.append(error("--train-num-samples", "is needed for synthetic data", "e.g. --train-num-samples 1024"))


def _launch_updates(config: TrainConfig, gpus: int) -> dict[str, object]:
    updates: dict[str, object] = {}
    if config.precision is Precision.auto:
        updates["precision"] = Precision.amp if gpus > 0 else Precision.fp32
    if config.nproc_per_node is None:
        updates["nproc_per_node"] = len(config.gpus.split(",")) if config.gpus else max(gpus, 1)
    if config.lr is None:
        updates["lr"] = FINE_TUNE_LR if config.pretrained or brings_own_weights(config.model) else SCRATCH_LR
    if config.name is None:
        updates["name"] = default_run_name(config.model, datetime.now())
    return updates


def _hub_model_updates(config: TrainConfig, given: set[str], problems: list[Problem]) -> dict[str, object]:
    """`--pretrained hf-hub:ID` (or local-dir:FOLDER) names a whole model: open_clip takes it as the model, with no --pretrained.

    A local-dir: folder that exists here is made absolute, so that resume, eval and SLURM jobs started
    from another folder find it.
    """
    updates: dict[str, object] = {}
    if brings_own_weights(config.pretrained or ""):
        if "model" in given and config.model != config.pretrained:
            problems.append(warning("--model", f"'{config.model}' is replaced by {config.pretrained}, which brings its own architecture",
                                    f"drop --model, or pass --model {config.pretrained}"))
        updates = {"model": config.pretrained, "pretrained": None}
    folder = local_folder(str(updates.get("model", config.model)))
    if folder is not None and folder.is_dir():
        updates["model"] = LOCAL_PREFIX + str(folder.resolve())
    return updates


def _cadence_updates(config: TrainConfig, problems: list[Problem]) -> dict[str, object]:
    """--checkpoint-every-samples N with --total-samples M: epochs of N samples drawn with replacement, ceil(M/N) of them."""
    every, total = config.checkpoint_every_samples, config.total_samples
    if every is None and total is None:
        return {}
    if every is None or total is None:
        missing, given = (("--checkpoint-every-samples", "--total-samples") if every is None
                          else ("--total-samples", "--checkpoint-every-samples"))
        problems.append(error(given, f"needs {missing}",
                              "pass both: --checkpoint-every-samples N --total-samples M (M samples in all, a checkpoint every N)"))
        return {}
    epochs = config.planned_epochs()
    if config.train_num_samples not in (None, every):
        problems.append(error("--train-num-samples",
                              f"conflicts with --checkpoint-every-samples {every} (which makes each epoch {every} samples)",
                              "drop --train-num-samples"))
    if config.dataset_resampled is False:
        problems.append(error("--no-dataset-resampled",
                              "conflicts with --checkpoint-every-samples (its epochs draw samples with replacement)",
                              "drop --no-dataset-resampled"))
    if "epochs" in config.model_fields_set and config.epochs != epochs:
        problems.append(error("--epochs", f"is set by --total-samples {total} / --checkpoint-every-samples {every} (= {epochs} epochs)",
                              "drop --epochs, or change --total-samples"))
    return {"train_num_samples": every, "epochs": epochs, "dataset_resampled": True}


def _cadence_problems(config: TrainConfig) -> list[Problem]:
    if config.checkpoint_every_samples is not None and config.dataset_type is DatasetType.csv:
        return [error("--checkpoint-every-samples", "needs webdataset shards (an epoch of CSV data always reads the whole file)",
                      "convert the CSV to shards, or use --epochs with --save-frequency")]
    return []


def _resume_updates(config: TrainConfig, problems: list[Problem]) -> dict[str, object]:
    """Resolve --resume auto (or latest) to the run folder's newest complete checkpoint, or a fresh start.

    A run folder that exists without a complete checkpoint keeps open_clip's `latest`, which lets
    open_clip start fresh in it (bmclip's worker finds no checkpoint either).
    """
    if config.resume not in RESUME_FROM_RUN_FOLDER:
        return {}
    run_dir = config.run_dir()
    point = newest_complete_checkpoint(run_dir)
    problems.extend(point.skipped)
    if point.checkpoint is not None:
        return {"resume": str(point.checkpoint)}
    if any((run_dir / marker).exists() for marker in RUN_MARKERS):
        return {"resume": OPEN_CLIP_RESUME_LATEST}
    return {"resume": None}


def _preset(config: TrainConfig, given: set[str], site: LaunchSite, nproc_per_node: int) -> PresetChoice:
    """What --preset sets for this node, leaving alone the fields in `given` (what the user typed: the fields_set of the config as
    given); `config` still holds the values it may decide (precision auto)."""
    hardware = Hardware(gpus=site.gpus, bf16=site.bf16, world_size=nproc_per_node * config.nnodes)
    vit = image_tower_is_vit(config.model) if config.preset is not Preset.none else None
    return preset_choice(config, given, hardware, vit)


def _run_folder_problems(config: TrainConfig) -> list[Problem]:
    run_dir = config.run_dir()
    if config.resume is None and any((run_dir / marker).exists() for marker in RUN_MARKERS):
        return [error("--name", f"run folder '{run_dir}' already exists",
                      "pick another --name, or continue it with --resume auto (or bmclip resume)")]
    if config.resume not in (None, *RESUME_FROM_RUN_FOLDER):
        resume = Path(config.resume)
        if not resume.is_file():
            return [error("--resume", f"checkpoint '{resume}' does not exist", "pass an epoch_K.pt file or 'auto'", local_only=True)]
    return []


def _disk_space_problems(config: TrainConfig) -> list[Problem]:
    """A run folder whose disk cannot hold one more checkpoint of the size its newest one has: the run would stop at its first save."""
    checkpoints = epoch_checkpoints(config.run_dir())
    if config.resume is None or not checkpoints:
        return []
    needed, folder = checkpoints[-1].stat().st_size, checkpoints[-1].parent
    free = free_bytes(folder)
    if free >= needed:
        return []
    return [error("--logs", f"'{folder}' has {human_size(free)} free, and each checkpoint of this run takes {human_size(needed)}",
                  "free space on that disk (older epoch_K.pt files you no longer need), then run this again", local_only=True)]


def _still_running_problems(config: TrainConfig) -> list[Problem]:
    """A run folder whose launching bmclip process still runs here must not get a second training."""
    launch = RunFolder(config.run_dir()).launch_record()
    if launch is not None and launch.alive_here():
        return [error("--name", f"run folder '{config.run_dir()}' is being trained right now by bmclip process {launch.pid}",
                      "wait for it to end, or stop it (Ctrl-C, or kill that process) before resuming")]
    return []


def _multi_node_problems(config: TrainConfig) -> list[Problem]:
    """Launch settings that would leave nodes waiting for each other, judged on the config as given (before auto values are filled in).

    Several nodes meet at --rdzv-endpoint. By c10d rendezvous (no --node-rank) they also need one
    rendezvous id: --rdzv-id, else --name; the run name bmclip makes up comes from each node's own
    clock, so it may differ between nodes.
    """
    problems: list[Problem] = []
    endpoint = config.rdzv_endpoint
    if endpoint is not None and rendezvous_address(endpoint) is None:
        problems.append(error("--rdzv-endpoint", f"'{endpoint}' is not HOST:PORT",
                              "e.g. --rdzv-endpoint node001:29400 (the first node's address and a free port)"))
    if config.nnodes > 1 and endpoint is None:
        problems.append(error("--nnodes", f"{config.nnodes} nodes need a rendezvous endpoint to meet at",
                              "pass --rdzv-endpoint HOST:PORT (the first node's address and a free port), the same on every node"))
    if endpoint is not None and config.master_port is not None:
        problems.append(error("--master-port", "has no effect with --rdzv-endpoint: the nodes meet at its port",
                              "drop --master-port and put the port in --rdzv-endpoint HOST:PORT"))
    if config.node_rank is not None and config.node_rank >= config.nnodes:
        problems.append(error("--node-rank", f"{config.node_rank} is not below --nnodes {config.nnodes}",
                              f"number the nodes 0..{config.nnodes - 1}, 0 on the --rdzv-endpoint host"))
    if config.nnodes > 1 and config.node_rank is None and config.rdzv_id is None and config.name is None:
        problems.append(error("--rdzv-id", "is needed on several nodes without --name: each node would make up its own run name as the id",
                              "pass the same --name (or --rdzv-id) on every node"))
    return problems


def preflight(config: TrainConfig, site: LaunchSite) -> Preflight:
    """Resolve the config's `auto` values and --preset for a run at `site`, and check everything a launch depends on.

    The result is one ResolvedConfig, validated as a whole; every problem found is in the list (see LaunchSite for how the site
    turns some into warnings).
    """
    state = Resolution(config)
    problems = state.problems
    problems += [] if site.slurm else _multi_node_problems(config)
    if config.resume == RESUME_AUTO and config.name is None:
        problems.append(warning("--resume", "auto without --name starts a new run folder each time",
                                "pass --name so that running the command again finds its checkpoints"))
    state.update(_cadence_updates(config, problems))
    _resolve_data(state)
    notes = _selection_notes(state) + (_pixel_notes(state) if not site.slurm else [])
    state.update(_hub_model_updates(state.view(), config.model_fields_set, problems))
    model_choice = state.view()
    model_problems = check_model(model_choice)
    if not site.slurm and not any(p.severity is Severity.ERROR for p in model_problems):
        model_problems += check_pretrained_file(model_choice)
    problems.extend(model_problems)
    problems.extend(check_val_zeroshot(model_choice))
    problems.extend(check_fine_tuning_traps(model_choice))
    launch = _launch_updates(model_choice, site.gpus)
    state.update(launch)
    nproc_per_node = launch.get("nproc_per_node", model_choice.nproc_per_node)
    chosen = _preset(model_choice, config.model_fields_set, site, nproc_per_node if isinstance(nproc_per_node, int) else 1)
    state.update(chosen.updates)  # over the launch defaults: --preset fast's bf16 over amp
    view = state.view()
    problems.extend(_cadence_problems(view))
    problems.extend(_as_warnings(check_hardware(view, site.gpus, site.installed_gpus), site.dry_run))
    problems.extend(_as_warnings(check_loggers(view), site.dry_run))
    problems.extend(check_extra_args(view))
    if not site.slurm:
        state.update(_resume_updates(view, problems))
        view = state.view()
    problems.extend(_run_folder_problems(view))
    problems.extend(_as_warnings(_disk_space_problems(view), site.dry_run))
    problems.extend(_as_warnings(_still_running_problems(view), site.dry_run))
    resolved = state.resolved() if not _stops(problems, site) else None
    if resolved is not None and not _stops(problems, site):
        parsed = parse_with_open_clip(openclip_argv(resolved))
        if isinstance(parsed, Problem):
            problems.append(parsed)
    if site.elsewhere:
        problems[:] = [_expected_elsewhere(p) if p.local_only else p for p in problems] + _unsniffed_separator(view)
    return Preflight(resolved, problems, chosen if config.preset is not Preset.none else None, notes)


def _stops(problems: list[Problem], site: LaunchSite) -> bool:
    """Whether an error stops the launch at this site (one only absent here does not stop a job that runs elsewhere)."""
    return any(p.severity is Severity.ERROR and not (site.elsewhere and p.local_only) for p in problems)


def _as_warnings(problems: list[Problem], dry_run: bool) -> list[Problem]:
    """Problems of the machine a command runs on, as warnings when the command is only printed here."""
    return [p.as_warning() for p in problems] if dry_run else problems


def _pixel_notes(state: Resolution) -> list[str]:
    """The line saying which intensity policy applies to the first training images, when they are 16-bit or DICOM; its problems."""
    if not state.first_images:
        return []
    config = state.given
    pixels = PixelSettings.of(config.intensity, config.max_pixels)
    pixel_problems, note = survey_findings(survey_images(state.first_images, pixels), "--train-data", pixels)
    state.problems.extend(pixel_problems)
    return [note] if note else []


def _expected_elsewhere(problem: Problem) -> Problem:
    """A problem that only says something is absent here, as a warning for a job that runs elsewhere."""
    return Problem(problem.subject, problem.message, "it must exist where the job runs", Severity.WARNING, local_only=True)


def _unsniffed_separator(config: TrainConfig) -> list[Problem]:
    if config.dataset_type is DatasetType.csv and config.csv_separator is None:
        return [error("--csv-separator", f"cannot be sniffed from '{config.train_data}', which is not on this machine",
                      "pass it, e.g. --csv-separator ','")]
    return []
