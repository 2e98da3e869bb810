"""A look at the first training images before launch: how many are high bit depth or DICOM, and can this install read them.

Preflight reads the first images of --train-data (a CSV's first rows, each shard source's first
samples) with the trainer's own reader, so that the intensity policy a run applies is said once,
before it starts, and a DICOM collection this install cannot decode stops with one line instead
of every sample being skipped in the ranks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.problems import Problem, error, warning

SURVEY_IMAGES = 5  # per source: a CSV's first rows, a shard source's first samples


@dataclass(frozen=True)
class SampleImage:
    """One image preflight looks at: a file path, or a shard member's bytes with its member name."""

    name: str
    data: bytes | None = None


@dataclass
class PixelSurvey:
    """What the first images were: how many were read, by kind, and the first decoder this install lacks."""

    read: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    missing_decoder: str | None = None

    @property
    def mapped(self) -> int:
        """Images whose values the intensity policy maps to 8 bits (high bit depth and DICOM)."""
        return sum(count for kind, count in self.kinds.items() if kind != "8-bit")


def survey_images(images: list[SampleImage], pixels: PixelSettings) -> PixelSurvey:
    """Read each image as a rank will; a file that fails to read for another reason is left to the ranks' bad-sample handling."""
    from biomedclip_cli.data.pixels.dicom import MissingDicomDecoder
    from biomedclip_cli.data.pixels.reader import read_image

    survey = PixelSurvey()
    for image in images:
        try:
            decoded = read_image(image.data if image.data is not None else image.name, pixels, image.name)
        except MissingDicomDecoder as exc:
            survey.missing_decoder = survey.missing_decoder or f"{image.name}: {exc}"
            continue
        except Exception:  # unreadable files are the sample guard's to skip and list, not preflight's to refuse
            continue
        survey.read += 1
        survey.kinds[decoded.facts.kind.value] += 1
    return survey


def survey_findings(survey: PixelSurvey, option: str, pixels: PixelSettings) -> tuple[list[Problem], str | None]:
    """The problems the survey shows (a missing DICOM decoder; values clipped by --intensity clip), and the line naming the policy."""
    problems = [error(option, f"cannot read {survey.missing_decoder}")] if survey.missing_decoder else []
    if not survey.mapped:
        return problems, None
    kinds = " and ".join(f"{count} {kind}" for kind, count in survey.kinds.most_common() if kind != "8-bit")
    if pixels.intensity.kind == "clip":
        problems.append(warning("--intensity", f"clip saturates every value above 255 of the high-bit-depth images in {option} ({kinds} "
                                               f"of the first {survey.read})", "leave --intensity at auto unless that is what you want"))
    note = (f"{option}: of the first {survey.read} images, {kinds}: mapped to 8 bits by --intensity "
            f"{pixels.intensity.describe()}")
    return problems, note
