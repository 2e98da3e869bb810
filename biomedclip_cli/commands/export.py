"""`bmclip export`: a run's checkpoint as plain open_clip weights (LoRA adapters merged), for use without bmclip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.commands import completion
from biomedclip_cli.commands.help_text import examples

EPILOG = examples(
    ("the newest checkpoint of a LoRA run, merged, as one open_clip file", "bmclip export demo-run/logs/lora --output lora-merged.pt"),
    ("the best checkpoint of a BiomedCLIP run, as a model folder",
     "bmclip export logs/biomedclip/checkpoints/best.pt --output biomedclip-ft"),
    ("WiSE-FT: half way between a run's start and its end (α from eval --wise-ft)",
     "bmclip export logs/ft --wise-ft 0.5 --output ft-wise-0.5.pt"),
    ("a soup: the average of the run's last three epoch checkpoints", "bmclip export logs/ft --average 3 --output ft-soup.pt"),
)


def export(
    checkpoint: Annotated[Path, typer.Argument(
        help="A run folder (its newest epoch checkpoint) or a checkpoint file (epoch_K.pt, best.pt).", metavar="CHECKPOINT",
        show_default=False, autocompletion=completion.checkpoints)],
    output: Annotated[Path, typer.Option(help="File to write (.pt), or for hf-hub:/local-dir: models a folder.", metavar="PATH")],
    model: Annotated[Optional[str], typer.Option(
        help="open_clip model name; read from the run's bmclip.yaml when a run's checkpoint is given.", show_default=False,
        metavar="NAME", autocompletion=completion.model_names)] = None,
    wise_ft: Annotated[Optional[float], typer.Option(
        "--wise-ft", min=0.0, max=1.0, help="Write (1-α)·start + α·checkpoint instead: the weights the run started from mixed back in "
                                            "(0 is the start, 1 the checkpoint).", metavar="ALPHA", show_default=False)] = None,
    average: Annotated[Optional[str], typer.Option(
        help="Write the uniform average (soup) of the run's last K epoch checkpoints, or of the epochs listed (2,4,6), instead.",
        metavar="K|EPOCHS", show_default=False)] = None,
) -> None:
    """Write a checkpoint's weights as plain open_clip weights:
    LoRA adapters are merged into their layers and the optimizer state is dropped.

    For an open_clip model name the result is a file that open_clip.create_model_and_transforms(MODEL, pretrained=FILE) loads; for hf-hub:
    and local-dir: models (BiomedCLIP and the like), whose weights open_clip reads from a folder, it is a folder with the model's
    open_clip_config.json and tokenizer files, loaded as local-dir:FOLDER.
    """
    from biomedclip_cli.problems import ProblemFound, error
    from biomedclip_cli.runs.blends import interpolations, soup
    from biomedclip_cli.runs.export import check_output, export_weights, write_weights
    from biomedclip_cli.runs.weights import model_of, pixels_of, resolve_checkpoint, run_config

    if wise_ft is not None and average is not None:
        raise ProblemFound(error("--wise-ft", "and --average are two ways to blend a run", "pass one of them"))
    model_name = model_of(model, [str(checkpoint)])
    pixels = pixels_of(None, [str(checkpoint)])
    source = resolve_checkpoint(checkpoint)
    check_output(model_name, output)
    config = run_config(checkpoint)
    lora = config is not None and bool(config.lora_rank)
    with console.err.status(f"merging {source}"):
        if wise_ft is None and average is None:
            exported, made = export_weights(source, model_name, output), f"from {source}"
        else:
            if wise_ft is not None:
                [blend] = interpolations(checkpoint, model_name, [wise_ft])
                made = f"α={wise_ft:g} between the run's start and {source}"
            else:
                blend = soup(checkpoint, model_name, average or "")
                made = f"the {blend.name}"
            assert blend.state is not None
            exported = write_weights(blend.state, model_name, output, merged_lora=lora)
    merged = "LoRA adapters merged, " if exported.merged_lora else ""
    console.out.print(f"bmclip: wrote {exported.path} ({merged}{exported.tensors} tensors, {made})", markup=False)
    console.out.print(f"load it with: {exported.load_with}", markup=False)
    console.out.print(f"pixels: it learnt 16-bit and DICOM images as --intensity {pixels.intensity.text()} maps them; read new ones "
                      "the same way (bmclip eval does, from the run's bmclip.yaml)", markup=False)
