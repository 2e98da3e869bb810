"""Following a shard's tar headers as its bytes arrive: how many samples are complete, and which one is still coming.

When a transfer is given up, this says how many samples the shard had delivered and which sample it
was cut in the middle of, without reading the bytes twice: it looks only at the 512-byte headers
(and at pax and GNU long-name records, which carry long member names), skipping member data by
arithmetic. Members are grouped into samples as webdataset groups them: by the name up to its first
dot, a new sample starting where that key changes or a suffix repeats.
"""

from __future__ import annotations

import re

BLOCK = 512
SAMPLE_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset's base_plus_ext
META_MEMBER = re.compile(r"__[^/]*__($|/)")  # members webdataset skips (e.g. __index__)
NAME_RECORDS = (b"x", b"L")  # a pax extended header, a GNU long name: they name the member that follows
REGULAR = (b"0", b"\0", b"7")
MAX_NAME_RECORD = 1 << 16


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _size(field: bytes) -> int:
    if field[0] & 0x80:  # base-256, for members of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip()
    return int(digits, 8) if digits else 0


class TarSamples:
    """Counts the samples of a tar stream fed to it chunk by chunk: `complete` ones, and the key of the one `current`ly arriving.

    A sample is complete once the next sample's first header has arrived; `delivered()` also counts the
    one arriving when the bytes stop after its last member (a cut between two samples).
    """

    def __init__(self) -> None:
        self.complete = 0
        self.current: str | None = None
        self.ended = False
        self._suffixes: set[str] = set()
        self._received = 0
        self._next_header = 0
        self._header = bytearray()
        self._record: bytearray | None = None
        self._record_kind = b""
        self._record_end = 0
        self._long_name: str | None = None
        self._member_ends: list[int] = []
        self._members_before = 0

    def delivered(self) -> int:
        """Samples a reader has whole if the stream ends here: the complete ones, and the one arriving if all of its
        members that the sample before it had are in (webdataset shards hold the same members in every sample)."""
        arrived = sum(1 for end in self._member_ends if end <= self._received)
        whole = self.current is not None and 0 < self._members_before <= arrived
        return self.complete + (1 if whole else 0)

    def feed(self, chunk: bytes) -> None:
        """Follow the next bytes of the stream (in order, none left out)."""
        start = self._received
        self._received += len(chunk)
        index = 0
        while index < len(chunk) and not self.ended:
            position = start + index
            if self._record is not None and position < self._record_end:
                taken = chunk[index:index + self._record_end - position]
                self._record += taken
                index += len(taken)
                if start + index == self._record_end:
                    self._finish_record()
            elif position < self._next_header:
                index = self._next_header - start
            else:
                taken = chunk[index:index + BLOCK - len(self._header)]
                self._header += taken
                index += len(taken)
                if len(self._header) == BLOCK:
                    self._read_header(bytes(self._header))
                    self._header.clear()

    def _read_header(self, block: bytes) -> None:
        if not block.strip(b"\0"):  # the end-of-archive marker
            self._end_sample()
            self.ended = True
            return
        size, kind = _size(block[124:136]), block[156:157]
        data_start = self._next_header + BLOCK
        self._next_header = data_start + -(-size // BLOCK) * BLOCK
        if kind in NAME_RECORDS:
            self._record = bytearray() if size <= MAX_NAME_RECORD else None
            self._record_kind, self._record_end = kind, data_start + size
            if self._record is not None and size == 0:
                self._finish_record()
            return
        name = _text(block[0:100])
        if block[257:262] == b"ustar" and (prefix := _text(block[345:500])):
            name = f"{prefix}/{name}"
        name, self._long_name = self._long_name or name, None
        if kind not in REGULAR or META_MEMBER.match(name) or ("/" not in name and name.startswith("__") and name.endswith("__")):
            return
        match = SAMPLE_KEY.match(name)
        if match is None:
            return
        key, suffix = match.group(1), match.group(2).lower()
        if key != self.current or suffix in self._suffixes:
            self._end_sample()
            self.current = key
        self._suffixes.add(suffix)
        self._member_ends.append(data_start + size)

    def _finish_record(self) -> None:
        record, self._record = bytes(self._record or b""), None
        if self._record_kind == b"L":
            self._long_name = _text(record) or None
            return
        for line in record.decode("utf-8", errors="replace").split("\n"):
            _, _, keyword_value = line.partition(" ")
            keyword, _, value = keyword_value.partition("=")
            if keyword == "path" and value:
                self._long_name = value

    def _end_sample(self) -> None:
        if self.current is not None:
            self.complete += 1
            self._members_before = len(self._member_ends)
        self.current = None
        self._suffixes = set()
        self._member_ends = []
