"""Procedural biomedical-looking images and captions for the demo and the tests.

Five imaging modalities a biomedical reader recognises, each drawn with random position, scale,
contrast and noise, and captioned from several templates with synonyms. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

IMAGE_SIZE = 64
Rng = np.random.Generator


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    return xs * 2 - 1, ys * 2 - 1


def _to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(pixels * 255, 0, 255).astype(np.uint8))


def _ellipse(xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0


def _blobs(xs: np.ndarray, ys: np.ndarray, rng: Rng, count: int, radius: tuple[float, float]) -> np.ndarray:
    """A field of soft round spots at random places (nuclei, fluorescent puncta)."""
    field = np.zeros_like(xs)
    for cx, cy, r in zip(rng.uniform(-1, 1, count), rng.uniform(-1, 1, count), rng.uniform(*radius, count)):
        field = np.maximum(field, np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r)))
    return field


def chest_radiograph(rng: Rng, size: int = IMAGE_SIZE) -> Image.Image:
    """Grey thorax: bright soft tissue, two dark lungs, a bright spine and rib arcs."""
    xs, ys = _grid(size)
    shift, scale = rng.uniform(-0.12, 0.12, 2), rng.uniform(0.85, 1.1)
    xs, ys = (xs - shift[0]) / scale, (ys - shift[1]) / scale
    body = _ellipse(xs, ys, 0, 0.1, 0.95, 1.2) * 0.55
    lungs = (_ellipse(xs, ys, -0.42, 0.0, 0.32, 0.62) | _ellipse(xs, ys, 0.42, 0.0, 0.32, 0.62)) * 0.38
    ribs = (np.sin((ys + 0.25 * xs**2) * rng.uniform(14, 18)) > 0.75) * 0.18 * (np.abs(xs) < 0.8)
    spine = (np.abs(xs) < 0.07) * 0.3
    pixels = body - lungs + ribs * (lungs > 0) + spine * (body > 0)
    pixels = pixels * rng.uniform(0.8, 1.2) + rng.normal(0, rng.uniform(0.02, 0.06), xs.shape)
    return _to_image(np.repeat(pixels[..., None], 3, axis=2))


def he_histology(rng: Rng, size: int = IMAGE_SIZE) -> Image.Image:
    """Pink eosin stroma with purple haematoxylin nuclei and pale gaps."""
    xs, ys = _grid(size)
    nuclei = _blobs(xs, ys, rng, int(rng.integers(25, 60)), (0.03, 0.07))
    gaps = _blobs(xs, ys, rng, int(rng.integers(2, 6)), (0.1, 0.25)) > 0.6
    pink = np.array([0.93, 0.62, 0.75]) * rng.uniform(0.85, 1.05)
    purple = np.array([0.35, 0.2, 0.55]) * rng.uniform(0.8, 1.2)
    pixels = pink * (1 - nuclei[..., None]) + purple * nuclei[..., None]
    pixels = np.where(gaps[..., None], np.array([0.97, 0.92, 0.95]), pixels)
    return _to_image(pixels + rng.normal(0, 0.04, pixels.shape))


def fluorescence_microscopy(rng: Rng, size: int = IMAGE_SIZE) -> Image.Image:
    """Bright coloured spots on black: nuclei (blue) and labelled structures (green or red)."""
    xs, ys = _grid(size)
    pixels = np.zeros((*xs.shape, 3))
    pixels[..., 2] = _blobs(xs, ys, rng, int(rng.integers(4, 10)), (0.06, 0.12)) * rng.uniform(0.6, 1.0)
    channel = int(rng.integers(0, 2))
    pixels[..., channel] = _blobs(xs, ys, rng, int(rng.integers(15, 40)), (0.015, 0.04)) * rng.uniform(0.7, 1.0)
    return _to_image(pixels + np.abs(rng.normal(0, 0.02, pixels.shape)))


def ultrasound(rng: Rng, size: int = IMAGE_SIZE) -> Image.Image:
    """A grey speckled fan (sector) opening downwards from the top, on black."""
    xs, ys = _grid(size)
    apex_x, apex_y = rng.uniform(-0.15, 0.15), -1.0
    angle = np.arctan2(xs - apex_x, ys - apex_y)
    radius = np.hypot(xs - apex_x, ys - apex_y)
    half_width, depth = rng.uniform(0.5, 0.8), rng.uniform(1.6, 1.95)
    fan = (np.abs(angle) < half_width) & (radius < depth) & (radius > 0.15)
    speckle = rng.rayleigh(0.25, xs.shape) * rng.uniform(0.8, 1.3)
    organ = _ellipse(xs, ys, rng.uniform(-0.3, 0.3), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.4), rng.uniform(0.12, 0.3))
    pixels = fan * (speckle * (1 - 0.6 * organ))
    return _to_image(np.repeat(pixels[..., None], 3, axis=2))


def brain_mri(rng: Rng, size: int = IMAGE_SIZE) -> Image.Image:
    """An axial head slice: bright skull ring, grey brain, dark ventricles, on black."""
    xs, ys = _grid(size)
    cx, cy, scale = rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(0.8, 1.0)
    head = _ellipse(xs, ys, cx, cy, 0.75 * scale, 0.9 * scale)
    brain = _ellipse(xs, ys, cx, cy, 0.66 * scale, 0.8 * scale)
    ventricles = _ellipse(xs, ys, cx - 0.12 * scale, cy, 0.07, 0.25 * scale) | _ellipse(xs, ys, cx + 0.12 * scale, cy, 0.07, 0.25 * scale)
    folds = 0.08 * np.sin(xs * rng.uniform(18, 26)) * np.sin(ys * rng.uniform(18, 26))
    pixels = head * 0.9 - brain * 0.35 + brain * folds - ventricles * 0.4
    pixels = pixels * rng.uniform(0.8, 1.15) + rng.normal(0, 0.03, xs.shape)
    return _to_image(np.repeat(np.clip(pixels, 0, 1)[..., None], 3, axis=2))


@dataclass(frozen=True)
class Modality:
    """One imaging modality: its label, how to draw it, and caption templates with fillers."""

    label: str
    draw: Callable[[Rng, int], Image.Image]
    templates: tuple[str, ...]
    fillers: tuple[str, ...]


MODALITIES = (
    Modality("chest x-ray", chest_radiograph, (
        "Chest X-ray showing {}.", "PA chest radiograph demonstrating {}.", "Frontal chest x-ray of a patient with {}.",
        "Plain radiograph of the chest: {}.", "Portable chest X-ray revealing {}.",
    ), ("clear lung fields", "a right lower lobe opacity", "cardiomegaly", "a small pleural effusion", "no acute findings")),
    Modality("h&e histology", he_histology, (
        "H&E stained section showing {}.", "Hematoxylin and eosin staining of {}.", "Histology (H&E, x200) of {}.",
        "Histopathology of {}, H&E stain.", "Photomicrograph of an H&E section with {}.",
    ), ("invasive ductal carcinoma", "normal colonic mucosa", "granulomatous inflammation", "a liver biopsy", "lymph node tissue")),
    Modality("fluorescence microscopy", fluorescence_microscopy, (
        "Immunofluorescence microscopy of {}; nuclei counterstained with DAPI.", "Confocal fluorescence image of {}.",
        "Fluorescence microscopy showing {}.", "Immunofluorescent staining of {} (DAPI in blue).",
        "Fluorescent micrograph of {}.",
    ), ("HeLa cells", "cultured neurons", "mitochondria in fibroblasts", "GFP-labelled stem cells", "actin filaments")),
    Modality("ultrasound", ultrasound, (
        "Ultrasound image of the {}.", "Sonography of the {} (B-mode).", "Transabdominal ultrasound showing the {}.",
        "B-mode ultrasound scan of the {}.", "Doppler ultrasound of the {}.",
    ), ("liver", "gallbladder", "thyroid nodule", "fetal head", "right kidney")),
    Modality("brain mri", brain_mri, (
        "Axial T2-weighted MRI of the brain showing {}.", "Brain MRI (FLAIR) demonstrating {}.",
        "Axial magnetic resonance image of the head with {}.", "T1-weighted brain MRI: {}.", "MRI of the brain revealing {}.",
    ), ("no abnormality", "a periventricular lesion", "a small meningioma", "mild atrophy", "an acute infarct")),
)


@dataclass(frozen=True)
class SyntheticSample:
    """One generated figure: image, caption, modality label and a BIOMEDICA-like key."""

    key: str
    image: Image.Image
    caption: str
    label: str


def generate(per_class: int, seed: int, first_index: int = 0) -> Iterator[SyntheticSample]:
    """`per_class` samples of every modality, interleaved, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    for index in range(first_index, first_index + per_class):
        for modality in MODALITIES:
            caption = rng.choice(modality.templates).format(rng.choice(modality.fillers))
            pmcid = 1_000_000 + index * len(MODALITIES) + MODALITIES.index(modality)
            key = f"{seed:04d}-PMC{pmcid}-{MODALITIES.index(modality)}-{index:06d}"
            yield SyntheticSample(key, modality.draw(rng, IMAGE_SIZE), str(caption), modality.label)
