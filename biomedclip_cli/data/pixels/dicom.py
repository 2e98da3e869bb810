"""DICOM files through pydicom, in the order the field applies its steps.

1. the pixel data is decoded (compressed transfer syntaxes need pylibjpeg's plugins: the
   `dicom-compressed` extra); of a multi-frame file, the middle frame;
2. RescaleSlope/RescaleIntercept (or a Modality LUT) give the file's units, e.g. Hounsfield for CT;
3. the file's own window, a VOI LUT or WindowCenter/WindowWidth (the first of several), is what the
   `auto` intensity policy uses; the other policies replace it;
4. MONOCHROME1 (low values white) is inverted after windowing.
Colour files (RGB, YBR, PALETTE COLOR) come back as RGB values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from biomedclip_cli.data.pixels.bounds import check_decodable
from biomedclip_cli.data.pixels.windowing import UnitWindow, linear_window, sigmoid_window

DICOM_MAGIC_OFFSET, DICOM_MAGIC = 128, b"DICM"
DICOM_SUFFIXES = (".dcm", ".dicom")
COMPRESSED_EXTRA = "pip install 'bmclip[dicom-compressed]'"


class MissingDicomDecoder(ValueError):
    """The file's transfer syntax needs a decoder this install lacks."""


def looks_like_dicom(head: bytes) -> bool:
    """Whether the first bytes of a file are a DICOM Part 10 preamble and 'DICM' marker."""
    return head[DICOM_MAGIC_OFFSET:DICOM_MAGIC_OFFSET + len(DICOM_MAGIC)] == DICOM_MAGIC


@dataclass(frozen=True)
class DicomPixels:
    """One frame of a DICOM file: values in the file's units (after rescale), its own window, and how to show it.

    `values` is (rows, columns) for monochrome files and (rows, columns, 3) for colour; `eight_bit`
    says the values already are display values 0..255 (8-bit colour, or an 8-bit monochrome file
    without a window or rescale), which no policy changes, as for an 8-bit PNG.
    `dataset` is the file's data set, for its tags.
    """

    values: np.ndarray
    own_window: UnitWindow | None
    inverted: bool
    eight_bit: bool
    dataset: Any


def read_header(source: IO[bytes]) -> Any:
    """The data set of a DICOM file without its pixel data (for its size, tags and captions)."""
    import pydicom

    return pydicom.dcmread(source, stop_before_pixels=True, force=True)


def _check_decoder(dataset: Any) -> None:
    from pydicom.pixels import get_decoder

    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    if syntax is None or not syntax.is_compressed:
        return
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise MissingDicomDecoder(f"no DICOM decoder reads '{syntax.name}' pixel data; convert the file "
                                  "(e.g. gdcmconv --raw) to an uncompressed transfer syntax") from None
    if not decoder.is_available:
        raise MissingDicomDecoder(f"'{syntax.name}' compressed DICOM needs a decoder this install lacks: {COMPRESSED_EXTRA}")


def _own_window(dataset: Any) -> UnitWindow | None:
    """The file's VOI LUT, or its first WindowCenter/WindowWidth pair, as a map of modality values to [0, 1]."""
    from pydicom.multival import MultiValue
    from pydicom.pixels import apply_voi

    if "VOILUTSequence" in dataset and len(dataset.VOILUTSequence):
        item = dataset.VOILUTSequence[0]
        top = float(2 ** int(item.LUTDescriptor[2]) - 1)
        return lambda values: np.clip(apply_voi(np.rint(values).astype(np.int64), dataset).astype(np.float32) / top, 0.0, 1.0)
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is None or width is None:
        return None
    center = float(center[0] if isinstance(center, MultiValue) else center)
    width = float(width[0] if isinstance(width, MultiValue) else width)
    if width <= 0:
        return None
    if str(dataset.get("VOILUTFunction", "LINEAR")).upper() == "SIGMOID":
        return lambda values: sigmoid_window(values, center, width)
    return lambda values: linear_window(values, center, width)


def read_pixels(source: IO[bytes], max_pixels: int) -> DicomPixels:
    """The middle frame of a DICOM file in its own units, with its window (see the module docstring).

    A frame of more than twice `max_pixels` pixels raises ImageTooLarge before anything is decoded.
    """
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    dataset = pydicom.dcmread(source, force=True)
    if "PixelData" not in dataset and "FloatPixelData" not in dataset and "DoubleFloatPixelData" not in dataset:
        raise ValueError("DICOM file has no pixel data: cut short before it, or not an image (a report, a structured document)")
    _check_decoder(dataset)
    check_decodable(int(dataset.get("Columns", 0)), int(dataset.get("Rows", 0)), max_pixels)
    frames = int(dataset.get("NumberOfFrames") or 1)
    frame = pixel_array(dataset, index=frames // 2) if frames > 1 else dataset.pixel_array
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        colours = apply_color_lut(frame, dataset)
        eight = colours.dtype == np.uint8
        return DicomPixels(colours if eight else (colours >> 8).astype(np.uint8), None, False, True, dataset)
    if frame.ndim == 3:  # RGB and YBR (pydicom converts YBR to RGB)
        return DicomPixels(frame, None, False, frame.dtype == np.uint8, dataset)
    flat = _frame_view(dataset, frames // 2) if "SharedFunctionalGroupsSequence" in dataset else dataset
    values = apply_modality_lut(frame, flat)
    window = _own_window(flat)
    plain = int(flat.get("BitsStored", 16)) <= 8 and window is None and values.min() >= 0 and values.max() <= 255
    return DicomPixels(values.astype(np.uint8) if plain else values, window, photometric == "MONOCHROME1", plain, dataset)


FUNCTIONAL_GROUPS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")  # an enhanced file's rescale and window


def _frame_view(dataset: Any, frame: int) -> Any:
    """An enhanced multi-frame file's data set with the rescale and window of one frame at the top, where single-frame files keep them.

    Enhanced CT and MR files hold them in functional groups, shared by all frames or per frame (the per-frame one wins).
    """
    from pydicom.dataset import Dataset

    view = Dataset()
    view.update({element.tag: element for element in dataset if element.keyword not in ("PixelData",)})
    groups = [dataset.SharedFunctionalGroupsSequence[0]]
    if "PerFrameFunctionalGroupsSequence" in dataset and frame < len(dataset.PerFrameFunctionalGroupsSequence):
        groups.append(dataset.PerFrameFunctionalGroupsSequence[frame])
    for group in groups:
        for sequence in FUNCTIONAL_GROUPS:
            if sequence in group and len(group[sequence].value):
                for element in group[sequence].value[0]:
                    view[element.tag] = element
    return view
