"""Captions made from DICOM tags (prepare-csv --caption-template), for collections with no text beside the images.

A template such as "{Modality} {BodyPartExamined}: {StudyDescription}" names DICOM keywords in
braces. It is parsed, never evaluated: each field must be a plain keyword of the DICOM dictionary
(no attribute access, indexing, conversion or format spec), and filling it only looks tags up.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass
from typing import Any

from biomedclip_cli.problems import ProblemFound, error

OPTION = "--caption-template"
EXAMPLE = "write DICOM keywords in braces, e.g. '{Modality} {BodyPartExamined}'"
LOOSE_ENDS = " \t:;,-/|"
SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class CaptionTemplate:
    """A parsed --caption-template: the literal text and DICOM keywords in order."""

    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal text, keyword or None)

    @property
    def keywords(self) -> list[str]:
        """The DICOM keywords the template names, in order."""
        return [keyword for _, keyword in self.parts if keyword is not None]

    @classmethod
    def parse(cls, text: str) -> CaptionTemplate:
        """Parse a template; ProblemFound (one line naming the field and its position) when it is not one."""
        from pydicom.datadict import keyword_dict

        try:
            pieces = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ProblemFound(error(OPTION, f"{exc} in {text!r}", EXAMPLE)) from None
        parts: list[tuple[str, str | None]] = []
        position = -1
        for literal, field, spec, conversion in pieces:
            if field is None:
                parts.append((literal, None))
                continue
            position = _opening_brace(text, position + 1)
            if spec or conversion or not field.isidentifier():
                raise ProblemFound(error(OPTION, f"field '{{{field}}}' at character {position + 1} is not a plain DICOM keyword",
                                         "write only keywords in braces, e.g. {StudyDescription}"))
            if field not in keyword_dict:
                close = difflib.get_close_matches(field, list(keyword_dict), n=1)
                hint = f"did you mean {{{close[0]}}}?" if close else "use a keyword of the DICOM dictionary, e.g. {StudyDescription}"
                raise ProblemFound(error(OPTION, f"'{field}' at character {position + 1} is not a DICOM keyword", hint))
            parts.append((literal, field))
        if not any(keyword for _, keyword in parts):
            raise ProblemFound(error(OPTION, f"{text!r} names no DICOM tag", EXAMPLE))
        return cls(text, tuple(parts))

    def fill(self, dataset: Any) -> str:
        """The caption for one file: its tags' values in place of the keywords (missing tags empty), spaces tidied."""
        words = [literal + (_tag_text(dataset, keyword) if keyword else "") for literal, keyword in self.parts]
        caption = SPACES.sub(" ", "".join(words)).strip(LOOSE_ENDS)
        return caption if any(_tag_text(dataset, keyword) for keyword in self.keywords) else ""

    def empty_reason(self) -> str:
        """Why a row's caption is empty when the template filled nothing in."""
        return f"--caption-template left nothing: the file has none of {', '.join(self.keywords)}"


def _opening_brace(text: str, start: int) -> int:
    """Where the next field of a template opens at or after `start`: a '{' that is not one of an escaped '{{'."""
    index = start
    while index < len(text):
        if text.startswith("{{", index):
            index += 2
        elif text[index] == "{":
            return index
        else:
            index += 1
    return index


def _tag_text(dataset: Any, keyword: str) -> str:
    """A tag's value as text: several values joined with ', ', missing or empty as ''."""
    from pydicom.multival import MultiValue

    value = dataset.get(keyword) if dataset is not None else None
    if value is None:
        return ""
    if isinstance(value, (MultiValue, list, tuple)):
        return ", ".join(str(item).strip() for item in value if str(item).strip())
    return str(value).strip()
