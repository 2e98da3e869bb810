"""The training configuration: one pydantic model behind `train`, `resume`, `slurm-gen` and `--dry-run`.

Every field is also a command-line flag (its name with underscores turned into dashes) and a key
of the YAML file given with `--config`. Values typed on the command line override the file.
Fields left as ``None`` or ``auto`` are resolved by preflight from the data and the hardware.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from biomedclip_cli.pixel_policy import DEFAULT_INTENSITY, DEFAULT_MAX_PIXELS, canonical_intensity
from biomedclip_cli.problems import Problem, ProblemFound, error
from biomedclip_cli.sample_filter import SampleFilter, chosen_samples

DATA, MODEL, OPTIM, OUTPUT, LAUNCH = "Data", "Model", "Optimisation", "Output", "Launch"
RDZV_TIMEOUT_SECONDS = 600  # torchrun's own default for both rendezvous styles
DEFAULT_HANG_TIMEOUT_SECONDS = 1200  # below NCCL's 30 minutes; above a ViT-B epoch end's evaluation and checkpoint save on GPUs
DEFAULT_MAX_BAD_SAMPLES = 0.01  # past 1% the data as a whole is wrong (an image root, a mount), not a few files
REPORT_TARGETS = ("tensorboard", "wandb")
KEEP_BEST_METRICS = ("zeroshot-top1", "zeroshot-balanced-accuracy")  # what --keep-best can rank checkpoints by (higher is better)
RESUME_AUTO = "auto"
OPEN_CLIP, RANKS, LAUNCHER, BMCLIP = "open_clip", "ranks", "launcher", "bmclip"  # where a field's value goes (see option)
CSV_ONLY, WEBDATASET_ONLY = "csv", "webdataset"


class DatasetType(str, Enum):
    """How open_clip reads --train-data; `auto` decides from the path (.csv/.tsv or .tar)."""

    auto = "auto"
    csv = "csv"
    webdataset = "webdataset"
    synthetic = "synthetic"


class Preset(str, Enum):
    """A bundle of open_clip speed or memory options chosen from the hardware (see biomedclip_cli/launch/presets.py)."""

    none = "none"
    fast = "fast"
    memory = "memory"


class Precision(str, Enum):
    """open_clip's precision modes, plus `auto` (amp where a GPU is visible, fp32 on CPU)."""

    auto = "auto"
    amp = "amp"
    amp_bf16 = "amp_bf16"
    amp_bfloat16 = "amp_bfloat16"
    bf16 = "bf16"
    fp16 = "fp16"
    pure_bf16 = "pure_bf16"
    pure_fp16 = "pure_fp16"
    fp32 = "fp32"


def option(default: Any, text: str, panel: str, example: str, shown_default: str | None = None, *, to: str = OPEN_CLIP,
           only: str | None = None, metavar: str | None = None, **constraints: Any) -> Any:
    """A config field that is also a CLI option: help text, help panel, an example value for messages, and where its value goes.

    `to` is the field's consumer: OPEN_CLIP (passed to open_clip_train as its flag of the same name, by launch/openclip_args.py;
    with `only`, for that dataset type alone), RANKS (bmclip's code in every rank, by the rank settings of rank/settings.py),
    LAUNCHER (torchrun's command line, launch/launcher.py), or BMCLIP (used before launch: preflight resolves it into others).
    """
    extra: dict[str, JsonValue] = {"panel": panel, "example": example, "shown_default": shown_default, "to": to, "only": only,
                                   "metavar": metavar}
    return Field(default, description=text, json_schema_extra=extra, **constraints)


@dataclass(frozen=True)
class OptionMeta:
    """What option() records on a field beyond pydantic's own: its help panel, an example value, the default shown in --help
    (None: the field's own), where its value goes, the dataset type it applies to alone, and its metavar (None: from its type)."""

    panel: str | None = None
    example: str = ""
    shown_default: str | None = None
    to: str = OPEN_CLIP
    only: str | None = None
    metavar: str | None = None


def option_meta(field: FieldInfo) -> OptionMeta:
    """The option() record of a field (of any model whose fields are made with option()); the defaults for other fields."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    text = {key: str(value) for key, value in extra.items() if value is not None}
    return OptionMeta(text.get("panel"), text.get("example", ""), text.get("shown_default"), text.get("to", OPEN_CLIP), text.get("only"),
                      text.get("metavar"))


class TrainConfig(BaseModel):
    """Everything that defines one training run; the resolved copy is saved as <logs>/<name>/bmclip.yaml."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # the schema is built at the first validation, not for --help

    # Data
    train_data: str | None = option(
        None, "Training data: a CSV/TSV file, or webdataset shards as a brace pattern ('shards/{000000..000099}.tar'), local or on the "
        "Hugging Face hub ('hf://datasets/<owner>/<name>/{000000..000099}.tar'), or a BIOMEDICA set by name (listed below); "
        "'::' joins several sources.", DATA, "biomedica:commercial", metavar="DATA")
    val_data: str | None = option(None, "Validation data, same forms as --train-data.", DATA, "data/val.csv", metavar="DATA")
    max_bad_samples: float = option(
        DEFAULT_MAX_BAD_SAMPLES, "Unreadable samples (image missing, truncated or not an image; empty caption) to skip before the run "
        "stops on purpose: a count (100), or below 1 a fraction of the training samples (0.01 = 1%). Each is listed in the run "
        "folder's bad-samples.tsv.", DATA, "100", shown_default="0.01 (1% of the samples)", ge=0, to=RANKS)
    intensity: str = option(
        DEFAULT_INTENSITY, "How images of more than 8 bits (16-bit PNG/TIFF, DICOM) map to the model's 8: auto (a DICOM file's own "
        "window, else each image's 0.5-99.5 percentile window), minmax, percentile:LOW,HIGH, window:CENTER,WIDTH (in the file's units "
        "after rescale, e.g. Hounsfield: window:40,400), or clip (values above 255 saturate). The run folder records it.", DATA,
        "window:40,400", to=RANKS, metavar="POLICY")
    max_pixels: int = option(
        DEFAULT_MAX_PIXELS, "Images with more pixels are read reduced to fit (JPEGs while decoding); other formats over twice this "
        "are skipped as unreadable.", DATA, "200000000", gt=0, to=RANKS)
    scaled_decode: bool = option(
        True, "Decode JPEGs at the smallest DCT scale (1/2, 1/4, 1/8) that still covers the training crop at full resolution: large "
        "figures decode several times faster. --no-scaled-decode decodes every pixel, as open_clip does.", DATA, "false", to=RANKS)
    where: tuple[str, ...] = option(
        (), "Keep only the shard samples whose JSON metadata matches: e.g. 'article_license startswith \"CC BY\"' or "
        "'image_primary_label in [\"Clinical Imaging\", \"Microscopy\"]' (==, !=, in, not in, startswith, contains, and/or/not; "
        "docs/data.md#train-on-a-topic-of-biomedica). Repeat to AND several. Samples are tested before they are decoded; "
        "--train-num-samples counts the kept ones.", DATA, "'image_panel_type == \"single\"'", metavar="EXPR", to=RANKS)
    classes: str | None = option(
        None, "Keep only samples of these BIOMEDICA global classes, comma-separated (clinical-imaging,microscopy; the 16 are in "
        "docs/data.md): a shortcut for --where 'image_primary_label in [...]', ANDed with --where.", DATA, "clinical-imaging,microscopy",
        metavar="NAMES", to=RANKS)
    dataset_type: DatasetType = option(DatasetType.auto, "Dataset reader; auto decides from the path.", DATA, "csv")
    csv_img_key: str = option("filepath", "CSV column holding image paths.", DATA, "filepath", only=CSV_ONLY, metavar="COLUMN")
    csv_caption_key: str = option("caption", "CSV column holding captions (open_clip's own default is 'title').", DATA, "caption",
                                  only=CSV_ONLY, metavar="COLUMN")
    csv_separator: str | None = option(
        None, "CSV separator; sniffed from the header when not given (open_clip's own default is a TAB).", DATA, ",",
        shown_default="sniffed", only=CSV_ONLY, metavar="CHAR")
    train_num_samples: int | None = option(
        None, "Samples per epoch; for webdataset read from sizes.json beside the shards (or in the hub repo's folder) when not given.",
        DATA, "10968539", gt=0)
    val_num_samples: int | None = option(None, "Validation samples (webdataset).", DATA, "10000", gt=0)
    dataset_resampled: bool | None = option(
        None, "Sample shards with replacement; on by default for webdataset (BIOMEDICA's shards are clustered).", DATA, "true",
        shown_default="on for webdataset", only=WEBDATASET_ONLY)
    train_data_upsampling_factors: str | None = option(
        None, "Weights of the '::'-joined --train-data sources, e.g. '1::2'; needs --dataset-resampled.", DATA, "1::2",
        only=WEBDATASET_ONLY, metavar="FACTORS")
    revision: str | None = option(
        None, "Branch, tag or commit of the hub repo that hf:// data is read from (pins the dataset version).", DATA, "main",
        shown_default="the repo's default branch", to=BMCLIP, metavar="REV")

    # Model
    model: str = option(
        "ViT-B-32", "open_clip model name (see open_clip.list_models()), or bmclip-tiny for CPU tests.", MODEL, "ViT-B-32", metavar="NAME")
    pretrained: str | None = option(
        None, "Pretrained weights: an open_clip tag (e.g. openai) or a checkpoint file.", MODEL, "openai", metavar="WEIGHTS")
    lock_image: bool = option(False, "Freeze the image tower (LiT-style fine-tuning of the text side).", MODEL, "true")
    lock_image_unlocked_groups: int | None = option(
        None, "With --lock-image: leave the last N layer groups of the image tower trainable.", MODEL, "2", shown_default="0", ge=0)
    lock_text: bool = option(False, "Freeze the text tower.", MODEL, "true")
    lock_text_unlocked_layers: int | None = option(
        None, "With --lock-text: leave the last N layers of the text tower trainable.", MODEL, "2", shown_default="0", ge=0)
    lora_rank: int | None = option(
        None, "Fine-tune with LoRA adapters of this rank (through peft) instead of all weights; the towers are frozen.", MODEL, "8",
        shown_default="off", gt=0, to=RANKS)
    lora_alpha: float | None = option(None, "LoRA scale numerator (the adapters are scaled by alpha/rank).", MODEL, "16",
                                       shown_default="2 x --lora-rank", gt=0.0, to=RANKS)
    lora_dropout: float = option(0.0, "Dropout on the LoRA adapters' input.", MODEL, "0.05", ge=0.0, lt=1.0, to=RANKS)
    lora_targets: str | None = option(
        None, "Comma-separated module names (or name endings) that get LoRA adapters.", MODEL, "attn.qkv,attn.proj",
        shown_default="the attention projections of both towers", to=RANKS, metavar="NAMES")
    force_patch_dropout: float | None = option(None, "Override the ViT patch dropout (0 to switch it off).", MODEL, "0.5", ge=0.0, lt=1.0)
    grad_checkpointing: bool = option(False, "Trade compute for memory with gradient checkpointing.", MODEL, "true")

    # Optimisation
    batch_size: int = option(64, "Batch size per process (per GPU).", OPTIM, "256", gt=0)
    epochs: int = option(32, "Number of epochs.", OPTIM, "32", gt=0)
    lr: float | None = option(
        None, "Learning rate; 5e-4 from scratch, 5e-6 when fine-tuning from --pretrained.", OPTIM, "5e-6",
        shown_default="5e-4, or 5e-6 with --pretrained", gt=0.0)
    wd: float = option(0.2, "Weight decay.", OPTIM, "0.1", ge=0.0)
    warmup: int = option(1000, "Warmup steps (BIOMEDICA's recipe; open_clip's own default is 10000).", OPTIM, "1000", ge=0)
    precision: Precision = option(Precision.auto, "Floating-point precision.", OPTIM, "amp")
    accum_freq: int = option(1, "Gradient accumulation: update every N batches.", OPTIM, "4", gt=0)
    seed: int = option(0, "Random seed.", OPTIM, "0")
    local_loss: bool = option(False, "Compute the loss against local features only (less memory across GPUs).", OPTIM, "true")
    gather_with_grad: bool = option(False, "Gather features with gradients across GPUs (use with --local-loss).", OPTIM, "true")
    torchcompile: bool = option(False, "Compile the model with torch.compile (slower start, faster steps on GPUs).", OPTIM, "true")
    preset: Preset = option(
        Preset.none, "Speed/memory bundle of open_clip options chosen from the hardware: fast (bf16, patch dropout on ViTs, "
        "torch.compile, local loss) or memory (gradient checkpointing, bf16, local loss). Options you give yourself win; "
        "--dry-run shows the result.", OPTIM, "fast", to=BMCLIP)

    # Output
    logs: str = option("./logs", "Folder that holds run folders.", OUTPUT, "/scratch/logs", metavar="DIR")
    name: str | None = option(
        None, "Run folder name under --logs.", OUTPUT, "vit-b-32-biomedica", shown_default="<date>-<time>-<model>", metavar="NAME")
    save_frequency: int = option(1, "Save a checkpoint every N epochs (the last epoch is always saved).", OUTPUT, "1", ge=0)
    report_to: str = option(
        "", "Loggers: tensorboard, wandb, or both comma-separated.", OUTPUT, "tensorboard", shown_default="none", metavar="LOGGERS")
    workers: int = option(4, "Data-loading processes per training process.", OUTPUT, "8", ge=0)
    resume: str | None = option(
        None, "Continue from a checkpoint file; or 'auto' (also 'latest'): from this run folder's newest complete checkpoint if it has "
        "one, else start fresh, so the same command can simply be run again after a failure.", OUTPUT, "auto", metavar="CKPT")
    checkpoint_every_samples: int | None = option(
        None, "Save a checkpoint every N samples (with --total-samples): epochs of N samples drawn with replacement "
        "(webdataset), for frequent checkpoints on large data.", OUTPUT, "1000000", gt=0, to=BMCLIP)
    total_samples: int | None = option(
        None, "Samples to train on in all, with --checkpoint-every-samples (sets the number of epochs).", OUTPUT, "24000000", gt=0,
        to=BMCLIP)
    val_zeroshot: str | None = option(
        None, "CSV of labelled images (filepath and label columns) to score zero-shot classification on, as bmclip eval does, "
        "during training (rank 0); the top-1 goes to the console, TensorBoard/W&B and zeroshot.jsonl in the run folder.", OUTPUT,
        "data/heldout.csv", to=RANKS, metavar="CSV")
    val_zeroshot_label_column: str = option(
        "label", "Column of class labels in --val-zeroshot.", OUTPUT, "label", to=RANKS, metavar="COLUMN")
    val_zeroshot_every: int = option(1, "Run the --val-zeroshot evaluation every N epochs (and after the last).", OUTPUT, "2", gt=0,
                                     to=RANKS)
    keep_best: str | None = option(
        None, f"Keep the checkpoint with the best --val-zeroshot metric as checkpoints/best.pt: {' or '.join(KEEP_BEST_METRICS)}.",
        OUTPUT, "zeroshot-top1", shown_default="off", to=RANKS, metavar="METRIC")
    keep_checkpoints: int | None = option(
        None, "Keep only the newest K epoch checkpoints; older ones are deleted once a newer one is verified complete.", OUTPUT, "3",
        shown_default="all", gt=0, to=RANKS)

    # Launch
    nproc_per_node: int | None = option(
        None, "Training processes per node.", LAUNCH, "4", shown_default="one per visible GPU, else 1", gt=0, to=LAUNCHER)
    gpus: str | None = option(
        None, "GPU indices to use, as nvidia-smi lists them (they replace CUDA_VISIBLE_DEVICES).", LAUNCH, "0,1,2,3",
        pattern=r"^\d+(,\d+)*$", to=LAUNCHER, metavar="IDS")
    nnodes: int = option(1, "Number of nodes.", LAUNCH, "2", gt=0, to=LAUNCHER)
    node_rank: int | None = option(
        None, "Rank of this node, 0 on the --rdzv-endpoint host: given, the nodes meet by torchrun's static rendezvous there; "
        "not given, by c10d rendezvous, which numbers the nodes itself.", LAUNCH, "0", shown_default="numbered by the rendezvous", ge=0,
        to=LAUNCHER)
    rdzv_endpoint: str | None = option(
        None, "Rendezvous HOST:PORT shared by all nodes, needed with --nnodes above 1 (with --node-rank: node 0's address and port).",
        LAUNCH, "node001:29400", to=LAUNCHER, metavar="HOST:PORT")
    rdzv_id: str | None = option(
        None, "Rendezvous job id shared by all nodes (c10d rendezvous); give it or --name on every node.", LAUNCH, "biomedica-run",
        shown_default="the --name", to=LAUNCHER, metavar="ID")
    rdzv_timeout: int = option(
        RDZV_TIMEOUT_SECONDS, "Seconds a node waits at --rdzv-endpoint for all --nnodes nodes before it gives up with what it waited for "
        "(room for a node that starts late in a queue or loads its software slowly).", LAUNCH, "900", gt=0, to=LAUNCHER)
    hang_timeout: float = option(
        DEFAULT_HANG_TIMEOUT_SECONDS, "Seconds without a finished training step before the run stops as hung, with every rank's Python "
        "stacks in the run folder's stacks/ (0: never). Evaluation and checkpoint saves between epochs are not counted, but the other "
        "ranks wait for rank 0's: keep it above their time. The process group's timeout follows it.", LAUNCH, "600",
        shown_default=f"{DEFAULT_HANG_TIMEOUT_SECONDS} (20 minutes)", ge=0, to=RANKS)
    master_port: int | None = option(
        None, "Port of the rank-0 process on a single node (several nodes meet at --rdzv-endpoint's port).", LAUNCH, "29500", gt=0,
        lt=65536, to=LAUNCHER)

    extra_args: list[str] = Field(
        default_factory=list,
        description="open_clip_train flags bmclip has no option for (on the command line: after `--`).",
    )

    @field_validator("report_to")
    @classmethod
    def _known_report_targets(cls, value: str) -> str:
        targets = [t.strip() for t in value.split(",") if t.strip() and t.strip() != "none"]
        unknown = [t for t in targets if t not in REPORT_TARGETS]
        if unknown:
            raise ValueError(f"unknown logger {unknown[0]!r}; choose from {', '.join(REPORT_TARGETS)}")
        return ",".join(targets)

    @field_validator("keep_best")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in KEEP_BEST_METRICS:
            raise ValueError(f"unknown metric {value!r}; choose from {', '.join(KEEP_BEST_METRICS)}")
        return value

    @model_validator(mode="after")
    def _fine_tuning_options_fit(self) -> TrainConfig:
        needs = (("lock_image_unlocked_groups", "lock_image"), ("lock_text_unlocked_layers", "lock_text"), ("lora_alpha", "lora_rank"),
                 ("lora_targets", "lora_rank"), ("keep_best", "val_zeroshot"))
        for option, needed in needs:
            if getattr(self, option) is not None and not getattr(self, needed):
                raise ProblemFound(error(flag(option), f"needs {flag(needed)}", f"add {flag(needed)} {_example(needed)}".rstrip()))
        if self.lora_dropout and not self.lora_rank:
            raise ProblemFound(error("--lora-dropout", "needs --lora-rank", f"add --lora-rank {_example('lora_rank')}"))
        if self.lora_rank and (self.lock_image or self.lock_text):
            raise ProblemFound(error("--lora-rank",
                                     "already freezes both towers, so --lock-image/--lock-text would freeze the adapters too",
                                     "drop --lock-image/--lock-text, or drop --lora-rank"))
        return self

    @model_validator(mode="after")
    def _sample_filter_parses(self) -> TrainConfig:
        self.sample_filter()
        return self

    def sample_filter(self) -> SampleFilter | None:
        """The samples --where and --classes keep, parsed (None when neither is given); ProblemFound naming the option when one is wrong."""
        return chosen_samples(self.where, self.classes)

    @field_validator("intensity")
    @classmethod
    def _known_intensity_policy(cls, value: str) -> str:
        return canonical_intensity(value)

    @field_validator("max_bad_samples")
    @classmethod
    def _count_or_fraction(cls, value: float) -> float:
        if value >= 1 and value != int(value):
            raise ValueError("is a count (a whole number such as 100) or a fraction below 1 (such as 0.01)")
        return value

    @field_validator("train_data", "val_data", "pretrained", "name", "resume", "revision", "val_zeroshot", "lora_targets")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    def run_dir(self) -> Path:
        """The run folder <logs>/<name>; only meaningful once the name is resolved."""
        return Path(self.logs) / (self.name or "")

    def planned_epochs(self) -> int:
        """Epochs the run trains for: ceil(total / every) with --checkpoint-every-samples, else --epochs."""
        if self.checkpoint_every_samples and self.total_samples:
            return -(-self.total_samples // self.checkpoint_every_samples)
        return self.epochs


OPTION_FIELDS = tuple(name for name in TrainConfig.model_fields if name != "extra_args")
# The options a first run needs, which `--help` shows; `--help-all` shows every one.
HELP_FIRST = ("train_data", "val_data", "where", "model", "pretrained", "lock_image", "lock_text", "lora_rank", "batch_size",
              "epochs", "lr", "precision", "preset", "logs", "name", "resume", "report_to", "val_zeroshot", "nproc_per_node", "nnodes",
              "rdzv_endpoint")
# Launch settings a SLURM allocation decides: slurm-gen has no flag for them.
SLURM_DECIDES = ("gpus", "node_rank", "rdzv_endpoint", "rdzv_id", "master_port")


class ResolvedConfig(TrainConfig):
    """A TrainConfig whose `auto` values preflight has decided: what a run launches with, and what its bmclip.yaml records.

    Built by validating every value together (checks/preflight.py), so the config's rules run on the resolved values; the
    fields preflight always decides are no longer optional, and no `auto` enum is left.
    """

    name: str = Field(min_length=1)
    nproc_per_node: int = Field(gt=0)
    lr: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _nothing_left_to_decide(self) -> ResolvedConfig:
        if self.dataset_type is DatasetType.auto or self.precision is Precision.auto:
            raise ValueError("dataset_type and precision must be decided before a run launches")
        return self


def fields_for(destination: str) -> tuple[str, ...]:
    """The TrainConfig fields whose values go to `destination` (OPEN_CLIP, RANKS, LAUNCHER or BMCLIP), in field order."""
    return tuple(name for name, field in TrainConfig.model_fields.items()
                 if isinstance(field.json_schema_extra, dict) and option_meta(field).to == destination)


def dataset_type_only(field_name: str) -> str | None:
    """The dataset type a field applies to alone (CSV_ONLY, WEBDATASET_ONLY), or None when it applies to all."""
    return option_meta(TrainConfig.model_fields[field_name]).only


def _example(field_name: str) -> str:
    """The example value of a field, or nothing for a switch."""
    field = TrainConfig.model_fields[field_name]
    return "" if field.annotation is bool else option_meta(field).example


def flag(field_name: str) -> str:
    """The command-line flag of a config field (batch_size -> --batch-size)."""
    return "--" + field_name.replace("_", "-")


def load_config_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML config file, keys normalised to field names; bad files raise ProblemFound."""
    if not path.exists():
        raise ProblemFound(error("--config", f"file '{path}' does not exist", "check the path"))
    if path.is_dir():
        raise ProblemFound(error("--config", f"'{path}' is a folder", "pass a YAML file"))
    import yaml  # here, not at the top: --help never reads YAML

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ProblemFound(error(str(path), "is not a text file", "pass a YAML config file")) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or "syntax error"
        raise ProblemFound(error(str(path), f"is not valid YAML{where}: {reason}", "fix the syntax")) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ProblemFound(error(str(path), "must hold a mapping of option names to values", "write one 'key: value' per line"))
    normalised = {str(key).replace("-", "_"): value for key, value in values.items()}
    for key in normalised:
        if key not in TrainConfig.model_fields:
            raise ProblemFound(error(str(path), f"unknown key '{key}'", _closest_key_hint(key)))
    return normalised


def _closest_key_hint(key: str) -> str:
    close = difflib.get_close_matches(key, list(TrainConfig.model_fields), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return hint + "Keys are the long flag names with dashes as underscores (bmclip train --help lists them)"


def build_config(file_values: dict[str, Any], cli_values: dict[str, Any], cli_extra_args: list[str],
                 config_path: Path | None = None) -> TrainConfig:
    """Merge file and command-line values (command line wins; extra args append) into a validated TrainConfig."""
    merged = {**file_values, **cli_values}
    merged["extra_args"] = _as_arg_list(file_values.get("extra_args", []), config_path) + list(cli_extra_args)
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise ProblemFound(_problem_from_validation(exc, set(cli_values), config_path)) from None


def _as_arg_list(value: Any, config_path: Path | None) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(item) for item in value]
    raise ProblemFound(error(str(config_path), "extra_args must be a list of open_clip arguments",
                             "e.g. extra_args: ['--grad-clip-norm', '1.0']"))


def _problem_from_validation(exc: ValidationError, cli_keys: set[str], config_path: Path | None) -> Problem:
    first = exc.errors()[0]
    field_name = str(first["loc"][0]) if first["loc"] else ""
    field = TrainConfig.model_fields.get(field_name)
    subject = flag(field_name) if field_name in cli_keys or config_path is None else f"{config_path}: {field_name}"
    message = str(first["msg"])
    message = message[0].lower() + message[1:]
    message = message.removeprefix("value error, ")
    got = first.get("input")
    if got is not None and not isinstance(got, dict) and f"(got {got!r})" not in message:
        message += f" (got {got!r})"
    example = option_meta(field).example if field else None
    fix = f"for example {flag(field_name)} {example}" if example else "see bmclip train --help"
    return error(subject, message, fix)


def config_to_yaml(config: TrainConfig) -> str:
    """The config as YAML in field order, enum values as plain strings (what bmclip.yaml holds)."""
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
