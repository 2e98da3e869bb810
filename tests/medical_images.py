"""Radiology files made the way the field makes them, for the pixel tests: 16-bit PNG and TIFF (tifffile), DICOM written
with pydicom (rescale, window, MONOCHROME1, multi-frame, compressed), EXIF-rotated JPEGs.

Every phantom is four vertical bands of tissue, left to right: air, soft tissue, a lesion and bone.
A reader that sees them right gives four distinct, increasing values; Pillow's convert("RGB") gives
0, 255, 255, 255 (the lesion and the bone gone).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import tifffile
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import CTImageStorage, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

SIZE = 64
TISSUE_VALUES = (0, 1137, 1963, 3274)  # a CT export in 12 bits: air, soft tissue, a lesion, bone
HOUNSFIELD = (-1000, 40, 90, 1000)  # the same tissues in Hounsfield units
BAND_CENTRES = tuple(SIZE // 8 + band * SIZE // 4 for band in range(4))


def bands(values: tuple[float, ...] = TISSUE_VALUES, dtype: str = "uint16", rows: int = SIZE) -> np.ndarray:
    """A rows x SIZE image of four vertical bands with these values."""
    return np.repeat(np.array(values, dtype=dtype), SIZE // 4)[None, :].repeat(rows, axis=0)


def band_values(image: np.ndarray | Image.Image) -> list[int]:
    """The value at the centre of each band (first channel) of an image or an array (rows x columns [x channels])."""
    array = np.asarray(image)
    row = array[array.shape[0] // 2]
    return [int(row[x][0] if row.ndim == 2 else row[x]) for x in BAND_CENTRES]


def png16(values: np.ndarray | None = None) -> bytes:
    """A grayscale 16-bit PNG."""
    buffer = io.BytesIO()
    Image.fromarray(bands() if values is None else values).save(buffer, format="PNG")
    return buffer.getvalue()


def tiff16(values: np.ndarray | None = None, **options: object) -> bytes:
    """A 16-bit TIFF written by tifffile (zlib-compressed, or as `options` say)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, bands() if values is None else values, **({"compression": "zlib"} | options))
    return buffer.getvalue()


def _dicom(stored: np.ndarray, sop_class: str, photometric: str, **tags: object) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    dataset.Rows, dataset.Columns = stored.shape[-2:]
    if stored.ndim == 3:
        dataset.NumberOfFrames = stored.shape[0]
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, photometric
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    for keyword, value in tags.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = stored.astype("<u2").tobytes()
    return dataset


def saved(dataset: Dataset) -> bytes:
    """A data set as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_dataset(hounsfield: np.ndarray | None = None, window: tuple[float, float] | None = (40, 400), **tags: object) -> Dataset:
    """A CT slice as scanners store it: HU + 1024 in 12 bits, RescaleIntercept -1024, a soft-tissue window."""
    values = bands(HOUNSFIELD, "int32") if hounsfield is None else hounsfield
    window_tags = {"WindowCenter": window[0], "WindowWidth": window[1]} if window else {}
    tags = {"Modality": "CT", "BodyPartExamined": "HEAD", "StudyDescription": "CT HEAD WO CONTRAST", **window_tags, **tags}
    return _dicom(values + 1024, CTImageStorage, "MONOCHROME2", RescaleIntercept=-1024, RescaleSlope=1, **tags)


def ct(hounsfield: np.ndarray | None = None, window: tuple[float, float] | None = (40, 400), **tags: object) -> bytes:
    """ct_dataset as a file."""
    return saved(ct_dataset(hounsfield, window, **tags))


def radiograph_monochrome1() -> bytes:
    """A chest radiograph stored MONOCHROME1 (low values white): the tissues stored inverted in 12 bits, with a full window."""
    return saved(_dicom(4095 - bands(), DigitalXRayImageStorageForPresentation, "MONOCHROME1", Modality="DX",
                        BodyPartExamined="CHEST", WindowCenter=2048, WindowWidth=4096))


def multi_frame_ct() -> bytes:
    """Three frames: all air, the tissue bands, all bone; the middle frame is the tissue bands."""
    frames = np.stack([bands((-1000,) * 4, "int32"), bands(HOUNSFIELD, "int32"), bands((1000,) * 4, "int32")])
    return saved(_dicom(frames + 1024, CTImageStorage, "MONOCHROME2", Modality="CT", RescaleIntercept=-1024, RescaleSlope=1,
                        WindowCenter=40, WindowWidth=400))


def enhanced_ct() -> bytes:
    """An enhanced multi-frame CT: rescale and window only in the functional groups, shared by the frames, as enhanced files keep them."""
    frames = np.stack([bands((-1000,) * 4, "int32"), bands(HOUNSFIELD, "int32"), bands((1000,) * 4, "int32")])
    dataset = _dicom(frames + 1024, "1.2.840.10008.5.1.4.1.1.2.1", "MONOCHROME2", Modality="CT")
    transformation, window, shared = Dataset(), Dataset(), Dataset()
    transformation.RescaleIntercept, transformation.RescaleSlope, transformation.RescaleType = -1024, 1, "HU"
    window.WindowCenter, window.WindowWidth = 40, 400
    shared.PixelValueTransformationSequence = [transformation]
    shared.FrameVOILUTSequence = [window]
    dataset.SharedFunctionalGroupsSequence = [shared]
    return saved(dataset)


def eight_bit_dicom(photometric: str = "MONOCHROME2") -> bytes:
    """An 8-bit secondary capture (a screenshot of a viewer): display values, no window, no rescale."""
    dataset = _dicom(bands((20, 60, 100, 140)), "1.2.840.10008.5.1.4.1.1.7", photometric, Modality="OT")
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.PixelData = bands((20, 60, 100, 140)).astype(np.uint8).tobytes()
    return saved(dataset)


def compressed_ct(syntax: str) -> bytes:
    """The CT slice compressed with a transfer syntax (pydicom encodes through pylibjpeg's plugins)."""
    dataset = ct_dataset()
    dataset.compress(syntax)
    return saved(dataset)


def high_throughput_jpeg2000_ct() -> bytes:
    """The CT slice as HTJ2K (JPEG 2000 part 15), which only pylibjpeg-openjpeg decodes (Pillow does not).

    The codestream is plain JPEG 2000, which HTJ2K decoders read too (part 15 extends part 1).
    """
    dataset = ct_dataset()
    dataset.compress(pydicom.uid.JPEG2000Lossless)
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.HTJ2KLossless
    return saved(dataset)


def video_dicom() -> bytes:
    """A DICOM file whose pixel data is MPEG-2 video, which no DICOM decoder bmclip uses can read."""
    dataset = ct_dataset()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
    dataset.PixelData = encapsulate([b"\x00" * 64])
    dataset["PixelData"].VR = "OB"
    return saved(dataset)


def marked_photo(orientation: int) -> tuple[bytes, Image.Image]:
    """A JPEG stored sideways with an EXIF orientation tag, as phones store photos of slides; and the image a viewer shows.

    The upright image is 96 wide, 48 high, with a white square in its top-left corner.
    """
    upright = Image.new("RGB", (96, 48), (40, 40, 40))
    upright.paste((255, 255, 255), (0, 0, 16, 16))
    stored = upright.transpose(Image.Transpose.ROTATE_90) if orientation == 6 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue(), upright


def write(folder: Path, files: dict[str, bytes], captions: dict[str, str] | None = None) -> dict[str, Path]:
    """Write files (and the captions given, as .txt beside them) into a folder; their paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
        if captions and name in captions:
            paths[name].with_suffix(".txt").write_text(captions[name], encoding="utf-8")
    return paths
