"""Procedural biomedical-looking images and captions for the demo and the tests.

Eight kinds of figure a biomedical reader recognises: chest X-ray, H&E histology, fluorescence
microscopy and ultrasound, and four that differ subtly, as they do in real scans: head CT, abdominal
CT, and T1- and T2-weighted brain MRI of the same head anatomy, told apart only by tissue brightness.
Each is drawn with random position, scale, contrast and noise, and captioned from several templates
with synonyms that name its class. Nothing is downloaded.

A drawing is values in [0, 1]; each class says how it is stored (`Storage`): the microscopy and
ultrasound figures as 8-bit JPEG, as published; the scans as radiology exports them, in 16-bit PNG
and TIFF and in DICOM (CT in Hounsfield units behind a rescale, a radiograph in MONOCHROME1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np
from PIL import Image

IMAGE_SIZE = 64
Rng = np.random.Generator


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    return xs * 2 - 1, ys * 2 - 1


def _unit(pixels: np.ndarray) -> np.ndarray:
    """A drawing's values clipped to [0, 1]."""
    return np.clip(pixels, 0.0, 1.0).astype(np.float32)


def to_image(pixels: np.ndarray) -> Image.Image:
    """A drawing (values in [0, 1], gray or RGB) as the 8-bit RGB image a model should see of it."""
    return Image.fromarray(np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).convert("RGB")


def _ellipse(xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0


def _blobs(xs: np.ndarray, ys: np.ndarray, rng: Rng, count: int, radius: tuple[float, float]) -> np.ndarray:
    """A field of soft round spots at random places (nuclei, fluorescent puncta)."""
    field = np.zeros_like(xs)
    for cx, cy, r in zip(rng.uniform(-1, 1, count), rng.uniform(-1, 1, count), rng.uniform(*radius, count), strict=True):
        field = np.maximum(field, np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r)))
    return field


def chest_radiograph(rng: Rng, size: int = IMAGE_SIZE) -> np.ndarray:
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
    return _unit(pixels)


def he_histology(rng: Rng, size: int = IMAGE_SIZE) -> np.ndarray:
    """Pink eosin stroma with purple haematoxylin nuclei and pale gaps."""
    xs, ys = _grid(size)
    nuclei = _blobs(xs, ys, rng, int(rng.integers(25, 60)), (0.03, 0.07))
    gaps = _blobs(xs, ys, rng, int(rng.integers(2, 6)), (0.1, 0.25)) > 0.6
    pink = np.array([0.93, 0.62, 0.75]) * rng.uniform(0.85, 1.05)
    purple = np.array([0.35, 0.2, 0.55]) * rng.uniform(0.8, 1.2)
    pixels = pink * (1 - nuclei[..., None]) + purple * nuclei[..., None]
    pixels = np.where(gaps[..., None], np.array([0.97, 0.92, 0.95]), pixels)
    return _unit(pixels + rng.normal(0, 0.04, pixels.shape))


def fluorescence_microscopy(rng: Rng, size: int = IMAGE_SIZE) -> np.ndarray:
    """Bright coloured spots on black: nuclei (blue) and labelled structures (green or red)."""
    xs, ys = _grid(size)
    pixels = np.zeros((*xs.shape, 3))
    pixels[..., 2] = _blobs(xs, ys, rng, int(rng.integers(4, 10)), (0.06, 0.12)) * rng.uniform(0.6, 1.0)
    channel = int(rng.integers(0, 2))
    pixels[..., channel] = _blobs(xs, ys, rng, int(rng.integers(15, 40)), (0.015, 0.04)) * rng.uniform(0.7, 1.0)
    return _unit(pixels + np.abs(rng.normal(0, 0.02, pixels.shape)))


def ultrasound(rng: Rng, size: int = IMAGE_SIZE) -> np.ndarray:
    """A grey speckled fan (sector) opening downwards from the top, on black."""
    xs, ys = _grid(size)
    apex_x, apex_y = rng.uniform(-0.15, 0.15), -1.0
    angle = np.arctan2(xs - apex_x, ys - apex_y)
    radius = np.hypot(xs - apex_x, ys - apex_y)
    half_width, depth = rng.uniform(0.5, 0.8), rng.uniform(1.6, 1.95)
    fan = (np.abs(angle) < half_width) & (radius < depth) & (radius > 0.15)
    speckle = rng.rayleigh(0.25, xs.shape) * rng.uniform(0.8, 1.3)
    organ = _ellipse(xs, ys, rng.uniform(-0.3, 0.3), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.4), rng.uniform(0.12, 0.3))
    return _unit(fan * (speckle * (1 - 0.6 * organ)))


@dataclass(frozen=True)
class HeadSlice:
    """The tissue masks of one axial head slice, shared by head CT and both brain MRI sequences.

    The three classes differ only in how bright each tissue is drawn, as the real scans do.
    """

    scalp: np.ndarray
    skull: np.ndarray
    grey_matter: np.ndarray
    white_matter: np.ndarray
    csf: np.ndarray


def head_slice(rng: Rng, size: int = IMAGE_SIZE) -> HeadSlice:
    """Random head anatomy: scalp and skull rings, folded cortex around white matter, CSF in ventricles and sulci."""
    xs, ys = _grid(size)
    cx, cy, scale = rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(0.8, 1.0)
    head = _ellipse(xs, ys, cx, cy, 0.78 * scale, 0.92 * scale)
    inside_scalp = _ellipse(xs, ys, cx, cy, 0.72 * scale, 0.86 * scale)
    brain = _ellipse(xs, ys, cx, cy, 0.64 * scale, 0.78 * scale)
    white = _ellipse(xs, ys, cx, cy, 0.46 * scale, 0.6 * scale)
    folds = np.sin(xs * rng.uniform(18, 26)) * np.sin(ys * rng.uniform(18, 26)) > 0.55
    width, length = rng.uniform(0.04, 0.09), rng.uniform(0.15, 0.3) * scale
    ventricles = _ellipse(xs, ys, cx - 0.12 * scale, cy, width, length) | _ellipse(xs, ys, cx + 0.12 * scale, cy, width, length)
    sulci = brain & ~white & folds
    csf = ventricles | sulci
    return HeadSlice(scalp=head & ~inside_scalp, skull=inside_scalp & ~brain, grey_matter=brain & ~white & ~csf,
                     white_matter=white & ~csf, csf=csf)


def _paint(head: HeadSlice, rng: Rng, scalp: float, skull: float, grey: float, white: float, csf: float,
           noise: float) -> np.ndarray:
    """Grey image of `head` with each tissue at its brightness, a random overall contrast and noise."""
    pixels = (head.scalp * scalp + head.skull * skull + head.grey_matter * grey + head.white_matter * white
              + head.csf * csf).astype(np.float64)
    pixels = pixels * rng.uniform(0.75, 1.15) + rng.normal(0, noise, pixels.shape)
    return _unit(pixels)


def head_ct(rng: Rng, size: int = IMAGE_SIZE) -> np.ndarray:
    """Head CT: a very bright bone ring; brain a flat grey with dark CSF (little grey-white contrast)."""
    return _paint(head_slice(rng, size), rng, scalp=0.4, skull=1.0, grey=0.5, white=0.45, csf=0.25, noise=0.04)


def brain_t1_mri(rng: Rng, size: int = IMAGE_SIZE) -> np.ndarray:
    """T1-weighted brain MRI: bright scalp fat, dark bone, white matter brighter than cortex, dark CSF."""
    return _paint(head_slice(rng, size), rng, scalp=0.85, skull=0.08, grey=0.45, white=0.65, csf=0.12, noise=0.03)


def brain_t2_mri(rng: Rng, size: int = IMAGE_SIZE) -> np.ndarray:
    """T2-weighted brain MRI: the same anatomy, but CSF bright and white matter darker than cortex."""
    return _paint(head_slice(rng, size), rng, scalp=0.6, skull=0.08, grey=0.55, white=0.38, csf=0.9, noise=0.03)


def abdominal_ct(rng: Rng, size: int = IMAGE_SIZE) -> np.ndarray:
    """Axial abdomen CT: a wide oval body with a fat rim, grey liver and kidneys, bright vertebra and aorta, black gas."""
    xs, ys = _grid(size)
    shift, scale = rng.uniform(-0.1, 0.1, 2), rng.uniform(0.85, 1.05)
    xs, ys = (xs - shift[0]) / scale, (ys - shift[1]) / scale
    body, inner = _ellipse(xs, ys, 0, 0, 0.92, 0.68), _ellipse(xs, ys, 0, 0, 0.82, 0.58)
    liver = _ellipse(xs, ys, -0.4, -0.1, rng.uniform(0.3, 0.42), rng.uniform(0.25, 0.35)) & inner
    kidneys = _ellipse(xs, ys, -0.32, 0.25, 0.1, 0.14) | _ellipse(xs, ys, 0.32, 0.25, 0.1, 0.14)
    vertebra, canal = _ellipse(xs, ys, 0, 0.4, 0.13, 0.12), _ellipse(xs, ys, 0, 0.34, 0.04, 0.04)
    aorta = _ellipse(xs, ys, -0.06, 0.18, 0.05, 0.05)
    gas = (_blobs(xs, ys, rng, int(rng.integers(3, 8)), (0.03, 0.07)) > 0.6) & inner & (xs > 0) & (ys < 0.1)
    pixels = body * 0.25 + inner * 0.2 + liver * 0.12 + kidneys * 0.18 + aorta * 0.3 + vertebra * 0.55
    pixels = np.where(canal | gas, 0.02, pixels) * rng.uniform(0.8, 1.15) + rng.normal(0, 0.04, xs.shape)
    return _unit(pixels)


class Storage(str, Enum):
    """How a class of figure is stored on disk (see data/demo.py, which writes them)."""

    JPEG = "8-bit JPEG"
    PNG16 = "16-bit PNG"  # 12-bit values, as MRI viewers export them
    TIFF16 = "16-bit TIFF"
    DICOM_CT = "DICOM CT"  # Hounsfield units: stored values with a rescale intercept of -1024, and a window
    DICOM_RADIOGRAPH = "DICOM radiograph"  # MONOCHROME1 (low values white), 12 bits, with a window


@dataclass(frozen=True)
class Modality:
    """One class of figure (a modality, or one anatomy or MRI sequence of it): label, drawing, caption templates and fillers, storage."""

    label: str
    draw: Callable[[Rng, int], np.ndarray]
    templates: tuple[str, ...]
    fillers: tuple[str, ...]
    storage: Storage = Storage.JPEG


# Shared by both MRI sequences, so that only the sequence's name tells their captions apart.
BRAIN_MRI_FINDINGS = ("no abnormality", "a periventricular lesion", "a small meningioma", "mild atrophy", "an acute infarct")
MODALITIES = (
    Modality("chest x-ray", chest_radiograph, (
        "Chest X-ray showing {}.", "PA chest radiograph demonstrating {}.", "Frontal chest x-ray of a patient with {}.",
        "Plain radiograph of the chest: {}.", "Portable chest X-ray revealing {}.",
    ), ("clear lung fields", "a right lower lobe opacity", "cardiomegaly", "a small pleural effusion", "no acute findings"),
        Storage.DICOM_RADIOGRAPH),
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
    Modality("head ct", head_ct, (
        "Non-contrast CT of the head showing {}.", "Axial head CT demonstrating {}.", "Computed tomography of the head: {}.",
        "Unenhanced cranial CT revealing {}.", "CT scan of the head (axial slice) with {}.",
    ), ("no acute intracranial abnormality", "a subdural hematoma", "a skull fracture", "chronic small vessel disease",
        "an acute infarct"), Storage.DICOM_CT),
    Modality("abdominal ct", abdominal_ct, (
        "Contrast-enhanced CT of the abdomen showing {}.", "Axial abdominal CT demonstrating {}.",
        "Computed tomography of the abdomen: {}.", "Portal venous phase abdominal CT revealing {}.", "CT scan of the abdomen with {}.",
    ), ("a hypodense liver lesion", "acute appendicitis", "a renal cyst", "small bowel obstruction", "no acute findings"),
        Storage.TIFF16),
    Modality("t1 brain mri", brain_t1_mri, (
        "Axial T1-weighted MRI of the brain showing {}.", "T1-weighted brain MRI: {}.", "Brain MRI (T1, post-contrast) demonstrating {}.",
        "Axial T1 magnetic resonance image of the brain with {}.", "MRI of the brain, T1 sequence, revealing {}.",
    ), BRAIN_MRI_FINDINGS, Storage.PNG16),
    Modality("t2 brain mri", brain_t2_mri, (
        "Axial T2-weighted MRI of the brain showing {}.", "T2-weighted brain MRI: {}.", "Brain MRI (T2, fast spin echo) demonstrating {}.",
        "Axial T2 magnetic resonance image of the brain with {}.", "MRI of the brain, T2 sequence, revealing {}.",
    ), BRAIN_MRI_FINDINGS, Storage.PNG16),
)


@dataclass(frozen=True)
class SyntheticSample:
    """One generated figure: its drawing (values in [0, 1]), caption, class and how the class is stored, and a BIOMEDICA-like key."""

    key: str
    pixels: np.ndarray
    caption: str
    label: str
    storage: Storage

    @property
    def image(self) -> Image.Image:
        """The 8-bit RGB image a model should see of this figure."""
        return to_image(self.pixels)


def generate(per_class: int, seed: int, first_index: int = 0) -> Iterator[SyntheticSample]:
    """`per_class` samples of every modality, interleaved, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    for index in range(first_index, first_index + per_class):
        for modality in MODALITIES:
            caption = rng.choice(modality.templates).format(rng.choice(modality.fillers))
            pmcid = 1_000_000 + index * len(MODALITIES) + MODALITIES.index(modality)
            key = f"{seed:04d}-PMC{pmcid}-{MODALITIES.index(modality)}-{index:06d}"
            yield SyntheticSample(key, modality.draw(rng, IMAGE_SIZE), str(caption), modality.label, modality.storage)
