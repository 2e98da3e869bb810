"""A tiny, offline stand-in for BiomedCLIP (hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224).

The model has the same open_clip_config.json structure as BiomedCLIP: a timm ViT image tower named by
`vision_cfg.timm_model_name` (timm_pool "", timm_proj "linear"), a Hugging Face BERT text tower named by
`text_cfg.hf_model_name` / `hf_tokenizer_name` (hf_proj_type "mlp", hf_pooler_type
"cls_last_hidden_state_pooler") and a preprocess_cfg with BiomedCLIP's mean and std. It is small
enough (337k parameters: 308k image, 28k text; 64 px images, 32 tokens) to train an epoch on a CPU in seconds.

Two ways to get it, neither downloads anything:

- `write_model_folder(folder)`: a folder for open_clip's `local-dir:FOLDER` scheme (config, weights and
  tokenizer files together; open_clip loads the tokenizer from the folder itself).
- `install_in_hub_cache(hf_home)`: Hugging Face hub cache entries under `hf_home/hub` for the open_clip
  repo (MODEL_REPO) and for the BERT repo its config names (TEXT_REPO), so that with HF_HOME=hf_home and
  HF_HUB_OFFLINE=1, `open_clip.create_model_and_transforms('hf-hub:' + MODEL_REPO)` and
  `open_clip.get_tokenizer('hf-hub:' + MODEL_REPO)` work as they do for the real BiomedCLIP.

Either way the text tower's config must be found under its hub id: open_clip's HFTextEncoder calls
`AutoConfig.from_pretrained(hf_model_name)` even when the full CLIP weights come from the folder. So a
local-dir folder also needs `install_in_hub_cache` (or at least the TEXT_REPO entry) with HF_HOME set.

The image tower is timm's registered `test_vit` (patch 16, width 64, depth 6, 2 heads): open_clip's
TimmModel calls `timm.create_model(timm_model_name)` without an image size, so the name must be one that
timm registers in every process (a model registered by a test would be unknown to an open_clip_train
subprocess), and the ViT must accept the configured image size: timm builds test_vit for its default
160 px (a 10x10 position embedding), but test_vit has `dynamic_img_size=True`, so that embedding is
interpolated to the 4x4 patches of a 64 px image.

LoRA-style target names (nn.Linear leaves): image tower `visual.trunk.blocks.N.attn.qkv`,
`visual.trunk.blocks.N.attn.proj` (MLP: `mlp.fc1`, `mlp.fc2`; head: `visual.head.proj`); text tower
`text.transformer.encoder.layer.N.attention.self.query` / `.key` / `.value` and
`text.transformer.encoder.layer.N.attention.output.dense` (MLP: `intermediate.dense`, `output.dense`;
projection: `text.proj.0`, `text.proj.2`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

MODEL_REPO = "bmclip-test/tiny-biomedclip"
TEXT_REPO = "bmclip-test/tiny-pubmedbert"

TIMM_MODEL = "test_vit"  # registered by timm itself; dynamic_img_size=True
IMAGE_SIZE = 64
EMBED_DIM = 32
CONTEXT_LENGTH = 32
BERT_HIDDEN = 32
BERT_LAYERS = 2
BERT_HEADS = 2
BERT_INTERMEDIATE = 64
BERT_MAX_POSITIONS = 64  # > CONTEXT_LENGTH, as PubMedBERT's 512 is > BiomedCLIP's 256
MEAN = (0.48145466, 0.4578275, 0.40821073)  # BiomedCLIP's preprocess_cfg (OpenAI's statistics)
STD = (0.26862954, 0.26130258, 0.27577711)

SEED = 0
# Fixed, made-up commit ids of the two hub cache snapshots (40 hex digits, as the hub's are).
MODEL_COMMIT = "0123456789abcdef0123456789abcdef01234567"
TEXT_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"

WeightsFormat = Literal["safetensors", "bin"]
WEIGHT_FILES: dict[str, str] = {"safetensors": "open_clip_model.safetensors", "bin": "open_clip_pytorch_model.bin"}
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Words of biomedical figure captions (those of biomedclip_cli.data.synthetic among them); BERT's
# pre-tokenizer splits punctuation off ("x-ray" -> "x", "-", "ray"), and a word not here becomes [UNK].
WORDS = """
a an the of and or in on with without at to from for by as is are was were this that these those
no not normal abnormal mild small large acute chronic left right lower upper lobe anterior posterior
image images figure fig panel showing shows shown demonstrating demonstrates revealing reveals
chest x ray xray radiograph radiography pa ap frontal lateral portable plain lung lungs fields field
clear opacity cardiomegaly pleural effusion pneumonia pneumothorax nodule nodules mass heart findings
ct scan scans computed tomography mri magnetic resonance axial sagittal coronal t1 t2 weighted flair
brain head lesion periventricular meningioma atrophy infarct abnormality tumor stroke
ultrasound sonography sonogram b mode doppler transabdominal scan liver gallbladder thyroid fetal
kidney
histology histopathology h e hematoxylin eosin stain stained staining section sections tissue
photomicrograph micrograph biopsy invasive ductal carcinoma colonic mucosa granulomatous
inflammation lymph node cell cells
fluorescence fluorescent immunofluorescence immunofluorescent microscopy microscope confocal
electron nuclei nucleus counterstained dapi blue green red gfp labelled labeled hela cultured
neurons mitochondria fibroblasts stem actin filaments
patient patients human mouse rat sample samples scale bar arrow arrows x200 x400 um mm
abdomen abdominal appendicitis bowel contrast cranial intracranial cyst disease echo enhanced unenhanced
non post fast spin sequence phase portal venous vessel fracture hematoma subdural hypodense
obstruction renal skull slice medical biomedical
""".split()  # noqa: SIM905  (a word list, one long string, reads better than a list literal)
SUBWORDS = ("##s", "##es", "##ed", "##ing", "##ly", "##al")
PUNCTUATION = tuple(".,;:()[]-/&%+=")
DIGITS = tuple("0123456789")


def vocabulary() -> list[str]:
    """The WordPiece vocabulary, one token a line in vocab.txt: special tokens first ([PAD] is id 0), no duplicates."""
    tokens: list[str] = []
    for token in (*SPECIAL_TOKENS, *PUNCTUATION, *DIGITS, *WORDS, *SUBWORDS):
        if token not in tokens:
            tokens.append(token)
    return tokens


def bert_config() -> dict[str, Any]:
    """The text repo's config.json: a 2-layer, 32-wide BERT over `vocabulary()` (PubMedBERT's layout, shrunk)."""
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=len(vocabulary()),
        hidden_size=BERT_HIDDEN,
        num_hidden_layers=BERT_LAYERS,
        num_attention_heads=BERT_HEADS,
        intermediate_size=BERT_INTERMEDIATE,
        max_position_embeddings=BERT_MAX_POSITIONS,
        pad_token_id=0,
    )
    data = config.to_dict()
    data["architectures"] = ["BertModel"]
    return data


def open_clip_config(text_repo: str = TEXT_REPO) -> dict[str, Any]:
    """The open_clip_config.json of the tiny model: BiomedCLIP's keys, with tiny values and `text_repo` as the text tower."""
    return {
        "model_cfg": {
            "embed_dim": EMBED_DIM,
            "vision_cfg": {
                "timm_model_name": TIMM_MODEL,
                "timm_model_pretrained": False,
                "timm_pool": "",
                "timm_proj": "linear",
                "image_size": IMAGE_SIZE,
            },
            "text_cfg": {
                "hf_model_name": text_repo,
                "hf_tokenizer_name": text_repo,
                "hf_proj_type": "mlp",
                "hf_pooler_type": "cls_last_hidden_state_pooler",
                "context_length": CONTEXT_LENGTH,
            },
        },
        "preprocess_cfg": {"mean": list(MEAN), "std": list(STD)},
    }


def write_tokenizer(folder: Path) -> list[Path]:
    """Write a lower-casing BERT WordPiece tokenizer over `vocabulary()` into `folder`; returns the files written."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file = Path(scratch) / "vocab.txt"
        vocab_file.write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
        # from_pretrained reads vocab.txt on transformers 4 and 5 alike; transformers 5's
        # BertTokenizer(vocab_file=...) silently ignores the file and keeps only the five special tokens
        tokenizer = BertTokenizer.from_pretrained(scratch, do_lower_case=True, model_max_length=BERT_MAX_POSITIONS)
        if len(tokenizer) != len(vocabulary()):
            raise RuntimeError(f"tokenizer has {len(tokenizer)} tokens, vocab.txt {len(vocabulary())}")
        tokenizer.save_pretrained(str(folder))
    # transformers 5 saves tokenizer.json + tokenizer_config.json only; the hub repos also carry vocab.txt
    (folder / "vocab.txt").write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
    return sorted(path for path in folder.iterdir() if path.name in TOKENIZER_FILES)


def build_model() -> Any:
    """The tiny CustomTextCLIP with its weights drawn after torch.manual_seed(SEED); the same tensors on every call.

    The text tower's config is read from a scratch folder, so this needs no hub cache; the state dict
    does not depend on where the config came from.
    """
    import torch
    from open_clip.model import CustomTextCLIP

    model_cfg = open_clip_config()["model_cfg"]
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "config.json").write_text(json.dumps(bert_config()), encoding="utf-8")
        text_cfg = {**model_cfg["text_cfg"], "hf_model_name": scratch, "hf_model_pretrained": False}
        torch.manual_seed(SEED)
        model = CustomTextCLIP(embed_dim=model_cfg["embed_dim"], vision_cfg=model_cfg["vision_cfg"], text_cfg=text_cfg)
    return model.eval()


def _save_state_dict(state: dict[str, Any], path: Path) -> None:
    """Save tensors as safetensors or a torch pickle, chosen by the file's suffix."""
    tensors = {name: tensor.detach().contiguous().clone() for name, tensor in state.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(tensors, str(path), metadata={"format": "pt"})
    else:
        import torch

        torch.save(tensors, path)


def write_model_folder(folder: Path, text_repo: str = TEXT_REPO, weights: WeightsFormat = "safetensors") -> Path:
    """Write a folder that open_clip loads as `local-dir:FOLDER`; returns the folder.

    It holds open_clip_config.json (model_cfg + preprocess_cfg), the weights of `build_model()`
    (open_clip_model.safetensors, or open_clip_pytorch_model.bin like the real BiomedCLIP repo when
    weights="bin") and the tokenizer files. Its text_cfg names the hub repo `text_repo`, whose BERT
    config.json open_clip reads through the hub cache: see `install_in_hub_cache`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(open_clip_config(text_repo), indent=2) + "\n", encoding="utf-8")
    _save_state_dict(build_model().state_dict(), folder / WEIGHT_FILES[weights])
    write_tokenizer(folder)
    return folder


def write_text_folder(folder: Path) -> Path:
    """Write the BERT text repo's files into `folder`: config.json, model.safetensors (seeded weights) and the tokenizer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(bert_config(), indent=2) + "\n", encoding="utf-8")
    text_state = {name[len("transformer."):]: tensor for name, tensor in build_model().text.state_dict().items()
                  if name.startswith("transformer.")}
    _save_state_dict(text_state, folder / "model.safetensors")
    write_tokenizer(folder)
    return folder


def repo_cache_folder(hf_home: Path, repo_id: str) -> Path:
    """The hub cache folder of model repo `repo_id` under `hf_home`: hf_home/hub/models--org--name."""
    return Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))


def _install_snapshot(hf_home: Path, repo_id: str, commit: str, source: Path) -> Path:
    """Copy the files of `source` into the hub cache as huggingface_hub lays out a download; returns the snapshot folder.

    Each file is a blob named by its sha256 under blobs/, linked from snapshots/<commit>/<name>, and
    refs/main holds the commit. An existing entry for the repo is replaced.
    """
    repo_folder = repo_cache_folder(hf_home, repo_id)
    if repo_folder.exists():
        shutil.rmtree(repo_folder)
    blobs = repo_folder / "blobs"
    snapshot = repo_folder / "snapshots" / commit
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo_folder / "refs").mkdir()
    (repo_folder / "refs" / "main").write_text(commit, encoding="utf-8")  # no newline, as huggingface_hub writes it
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        blob = blobs / digest
        if not blob.exists():
            shutil.copyfile(path, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / path.name)
    return snapshot


def install_in_hub_cache(hf_home: Path, repo_id: str = MODEL_REPO, text_repo: str = TEXT_REPO,
                         weights: WeightsFormat = "safetensors") -> str:
    """Place the tiny model in the Hugging Face hub cache under `hf_home/hub`; returns 'hf-hub:' + repo_id.

    Two entries (models--org--name/{blobs, refs/main, snapshots/<commit>}): `repo_id` with
    open_clip_config.json, the weights (open_clip_model.safetensors, or open_clip_pytorch_model.bin when
    weights="bin") and the tokenizer files; `text_repo` with the BERT's config.json, model.safetensors and
    tokenizer files. With HF_HOME=hf_home and HF_HUB_OFFLINE=1, open_clip then creates the model and its
    tokenizer from 'hf-hub:' + repo_id, and a `write_model_folder` folder naming `text_repo` loads as local-dir.
    """
    with tempfile.TemporaryDirectory() as scratch:
        model_files = write_model_folder(Path(scratch) / "model", text_repo=text_repo, weights=weights)
        text_files = write_text_folder(Path(scratch) / "text")
        _install_snapshot(Path(hf_home), repo_id, MODEL_COMMIT, model_files)
        _install_snapshot(Path(hf_home), text_repo, TEXT_COMMIT, text_files)
    return "hf-hub:" + repo_id


def offline_env(hf_home: Path) -> dict[str, str]:
    """Environment variables that make open_clip / huggingface_hub / transformers read only the cache under `hf_home`."""
    return {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(Path(hf_home) / "hub"),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def enable_bert_text_lock() -> None:
    """Let `lock_text_tower(unlocked_layers=N)` work on BERT text towers in this process (open_clip 3.3.0 bug).

    open_clip's hf_configs.arch_dict["bert"] lacks "layer_attr" and "token_embeddings_attr", so
    HFTextEncoder.lock(unlocked_layers>0) raises KeyError: 'layer_attr' for every BERT tower, the real
    BiomedCLIP's included (and so does `open_clip_train.main --lock-text --lock-text-unlocked-layers N`);
    unlocked_layers=0 (freeze all) works. This adds RoBERTa's values, which fit BertModel
    (`encoder.layer`, `embeddings`). Not applied on import: call it only where a test wants the fixed
    behaviour, since it changes only the calling process.
    """
    from open_clip.hf_configs import arch_dict

    arch_dict["bert"]["config_names"].setdefault("layer_attr", "layer")
    arch_dict["bert"]["config_names"].setdefault("token_embeddings_attr", "embeddings")
