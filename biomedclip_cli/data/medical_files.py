"""Image files written the way radiology exports them: 16-bit PNG and TIFF, and DICOM through pydicom.

The demo stores its CT, MRI and X-ray classes this way, so that reading them as 8-bit Pillow does
(values above 255 saturated) costs accuracy the eval table shows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np


def png16_bytes(values: np.ndarray) -> bytes:
    """A grayscale 16-bit PNG of unsigned values (Pillow writes mode I;16 as a 16-bit PNG)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def tiff16_bytes(values: np.ndarray) -> bytes:
    """A grayscale 16-bit TIFF of unsigned values, zlib-compressed as microscopes and PACS exports often are."""
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, values.astype(np.uint16), compression="zlib")
    return buffer.getvalue()


@dataclass(frozen=True)
class DicomImage:
    """What one DICOM file says about its pixels: modality, photometric interpretation, rescale, window, and descriptive tags.

    `stored` values are unsigned 16-bit in containers of `bits_stored` bits; modality values are
    stored * rescale_slope + rescale_intercept, e.g. Hounsfield units for CT.
    """

    modality: str
    photometric: str = "MONOCHROME2"
    bits_stored: int = 12
    rescale_intercept: float | None = None
    rescale_slope: float | None = None
    window: tuple[float, float] | None = None  # center, width in modality units
    tags: dict[str, str] = field(default_factory=dict)


SOP_CLASSES = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4", "DX": "1.2.840.10008.5.1.4.1.1.1.1"}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def dicom_bytes(stored: np.ndarray, image: DicomImage) -> bytes:
    """A DICOM Part 10 file (explicit VR little endian) holding `stored` (rows x columns, or frames x rows x columns)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    sop_class = UID(SOP_CLASSES.get(image.modality, SECONDARY_CAPTURE))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    dataset.Modality = image.modality
    dataset.Rows, dataset.Columns = int(stored.shape[-2]), int(stored.shape[-1])
    if stored.ndim == 3:
        dataset.NumberOfFrames = int(stored.shape[0])
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = image.photometric
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, image.bits_stored, image.bits_stored - 1
    dataset.PixelRepresentation = 0
    if image.rescale_intercept is not None:
        dataset.RescaleIntercept, dataset.RescaleSlope = image.rescale_intercept, image.rescale_slope or 1
    if image.window is not None:
        dataset.WindowCenter, dataset.WindowWidth = image.window
    for keyword, value in image.tags.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
