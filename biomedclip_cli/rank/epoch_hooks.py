"""What bmclip does around each epoch of open_clip_train: the trainable parameters at the start, --val-zeroshot after, --keep-best.

Rank 0 scores zero-shot classification on the user's labelled CSV with the same code as `bmclip
eval` (models/evaluation.py), on the model as it is after the epoch, and logs the scores to the
console, open_clip's log, TensorBoard and W&B (as open_clip logs its own validation) and the run's
zeroshot.jsonl. With --keep-best, a better score saves the model's weights as checkpoints/best.pt.
The other ranks wait for rank 0 at open_clip's end-of-epoch barrier.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.models.config_lookup import brings_own_weights
from biomedclip_cli.models.lora import parameters_line
from biomedclip_cli.partial_files import partial_path, publish
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.rank.console import TO_CONSOLE
from biomedclip_cli.runs.zero_shot_log import BEST_CHECKPOINT, BestCheckpoint, ZeroShotRecord, append_record, read_best, write_best


@dataclass(frozen=True)
class ZeroShotPlan:
    """The --val-zeroshot evaluation: the CSV, its label column, how often, and the metric --keep-best keeps by (None: keep none)."""

    csv: str
    label_column: str
    every: int
    keep_best: str | None

    @classmethod
    def of(cls, settings: TrainConfig) -> ZeroShotPlan | None:
        """The plan a run's settings ask for (--val-zeroshot and its options), or None without --val-zeroshot."""
        if settings.val_zeroshot is None:
            return None
        return cls(settings.val_zeroshot, settings.val_zeroshot_label_column, settings.val_zeroshot_every, settings.keep_best)


class ZeroShotEvaluator:
    """Rank 0's zero-shot evaluation on the plan's CSV, read once; the model's own preprocessing and tokenizer."""

    def __init__(self, plan: ZeroShotPlan, model_name: str, pixels: PixelSettings) -> None:
        import open_clip

        from biomedclip_cli.models.evaluation import read_classnames, read_eval_set, read_templates

        self.data = read_eval_set(Path(plan.csv), "filepath", plan.label_column, None)
        self.classes = read_classnames(None, self.data.labels or [])
        self.templates = read_templates(None)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.pixels = pixels

    def score(self, model: Any, preprocess: Any, args: argparse.Namespace, epoch: int) -> ZeroShotRecord:
        """The zero-shot scores of `model` (unwrapped, switched to eval mode for the evaluation only)."""
        import open_clip
        import torch
        from open_clip_train.precision import get_autocast

        from biomedclip_cli.models.evaluation import score_model

        was_training = model.training
        model.eval()
        try:
            with get_autocast(args.precision, device_type=torch.device(args.device).type)():
                scores, _ = score_model(model, preprocess, self.tokenizer, self.data, self.classes, self.templates, pixels=self.pixels,
                                        device=args.device, batch_size=args.batch_size,
                                        input_dtype=open_clip.get_input_dtype(args.precision))
        finally:
            model.train(was_training)
        assert scores is not None
        return ZeroShotRecord(epoch, scores.top1, scores.balanced_accuracy, scores.top5, scores.samples, len(scores.classnames))


def steps_per_epoch(data: dict, args: argparse.Namespace) -> int:
    """Optimizer steps in one epoch of open_clip's training data (batches over gradient accumulation)."""
    return int(data["train"].dataloader.num_batches // args.accum_freq)


def weights_started_from(args: argparse.Namespace) -> str:
    """What the model's weights were before training, in words, from open_clip's arguments."""
    if args.pretrained:
        return f"from --pretrained {args.pretrained}"
    if brings_own_weights(args.model):
        return f"{args.model}'s own weights"
    return "randomly initialised (no --pretrained)"


class EpochHooks:
    """open_clip's train_one_epoch with bmclip's additions before the first epoch and after each one (see the module docstring).

    Before the first epoch run (rank 0): the trainable parameters, and when it is not epoch 0 (a
    resume) the global step it continues at. After each epoch: --val-zeroshot when due, --keep-best.
    """

    def __init__(self, train_one_epoch: Callable[..., Any], run_dir: Path | None, plan: ZeroShotPlan | None,
                 checkpoint_entries: dict[str, Any], save: Callable[..., None], pixels: PixelSettings) -> None:
        self.train_one_epoch, self.run_dir, self.plan, self.pixels = train_one_epoch, run_dir, plan, pixels
        self.checkpoint_entries, self.save = checkpoint_entries, save
        self.first_call = True
        self.evaluator: ZeroShotEvaluator | None = None
        self.preprocess: Any = None
        self.best = read_best(run_dir) if run_dir is not None else None

    def remember_preprocess(self, create_model_and_transforms: Callable[..., Any]) -> Callable[..., Any]:
        """create_model_and_transforms that keeps the first model's evaluation preprocessing for the zero-shot images."""

        def create(*args: Any, **kwargs: Any) -> Any:
            built = create_model_and_transforms(*args, **kwargs)
            if self.preprocess is None:
                self.preprocess = built[2]
            return built

        return create

    def __call__(self, model: Any, data: dict, loss: Any, epoch: int, optimizer: Any, scaler: Any, scheduler: Any, dist_model: Any,
                 args: argparse.Namespace, **kwargs: Any) -> Any:
        from open_clip_train.distributed import is_master
        from open_clip_train.train import unwrap_model

        if self.first_call and is_master(args):
            logging.info(f"bmclip: {parameters_line(unwrap_model(model), weights_started_from(args))}", extra={TO_CONSOLE: True})
            if epoch > 0:
                steps = steps_per_epoch(data, args)
                logging.info(f"bmclip: continuing at epoch {epoch}, step {epoch * steps} of {args.epochs * steps}")
        self.first_call = False
        result = self.train_one_epoch(model, data, loss, epoch, optimizer, scaler, scheduler, dist_model, args, **kwargs)
        completed = epoch + 1
        due = self.plan is not None and (completed % self.plan.every == 0 or completed == args.epochs)
        if due and is_master(args):
            self._evaluate(unwrap_model(model), data, completed, args, kwargs.get("tb_writer"))
        return result

    def _evaluate(self, model: Any, data: dict, epoch: int, args: argparse.Namespace, tb_writer: Any) -> None:
        assert self.plan is not None
        if self.evaluator is None:
            self.evaluator = ZeroShotEvaluator(self.plan, args.model, self.pixels)
        record = self.evaluator.score(model, self.preprocess, args, epoch)
        better = self._keep_if_best(model, record, args)
        note = "; kept as the best" if better else ""
        logging.info(f"bmclip: epoch {epoch} zero-shot top-1 {record.top1:.3f}, balanced accuracy {record.balanced_accuracy:.3f}{note}")
        metrics = {"zeroshot-top1": record.top1, "zeroshot-balanced-accuracy": record.balanced_accuracy}
        if tb_writer is not None:
            for name, value in metrics.items():
                tb_writer.add_scalar(f"val/{name}", value, epoch)
        if args.wandb:
            import wandb

            wandb.log({**{f"val/{name}": value for name, value in metrics.items()}, "epoch": epoch},
                      step=steps_per_epoch(data, args) * epoch)
        if self.run_dir is not None:
            append_record(self.run_dir, record)

    def _keep_if_best(self, model: Any, record: ZeroShotRecord, args: argparse.Namespace) -> bool:
        metric = self.plan.keep_best if self.plan else None
        if metric is None or self.run_dir is None:
            return False
        value = record.metric(metric)
        if self.best is not None and self.best.metric == metric and value <= self.best.value:
            return False
        target = self.run_dir / BEST_CHECKPOINT
        partial = partial_path(target)
        self.save({"epoch": record.epoch, "name": args.name, "state_dict": model.state_dict(), **self.checkpoint_entries}, partial)
        publish(partial, target)
        self.best = BestCheckpoint(metric, value, record.epoch, BEST_CHECKPOINT)
        write_best(self.run_dir, self.best)
        return True
