"""`--where EXPR`: keep only the training samples whose JSON metadata matches an expression.

Why: BIOMEDICA streams 24M figure-caption pairs of every kind (microscopy, plots, tables, clinical
images, ...) and under several licences, and its own advice is to filter on demand using the metadata
that rides with each sample (the `json` member of a webdataset sample). `--where` says which to keep:

    --where 'image_primary_label in ["Clinical Imaging", "Microscopy"]'
    --where 'article_license startswith "CC BY" and not article_mesh_terms contains "Mice"'

How: a small expression language, read by a hand-written tokenizer and recursive-descent parser (the
user's text is never evaluated as Python), then compiled once into closures, because `matches` runs
for every sample of the stream.

Grammar (keywords are lowercase and case-sensitive; precedence: not > and > or):

    where      := or_expr END
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := FIELD ("==" | "!=") scalar
                | FIELD ("startswith" | "contains") STRING
                | FIELD ("in" | "not" "in") list
    list       := "[" [scalar ("," scalar)* [","]] "]"
    scalar     := STRING | NUMBER | "true" | "false" | "null"
    FIELD      := NAME ("." NAME)*       NAME := [A-Za-z_][A-Za-z0-9_]*, the first one not a keyword
    STRING     := "..." or '...', where \\" \\' \\\\ are the only escapes
    NUMBER     := -?[0-9]+(.[0-9]+)?

Semantics:
- A list-valued field matches when any of its elements does (==, in, startswith, contains).
- `!=` is exactly `not ==`, and `not in` is exactly `not (in)`: `labels != "Maps"` keeps samples
  none of whose labels is "Maps".
- A missing field and a null one are the same. `==`, `in`, `startswith` and `contains` are false on
  them (so `!=` and `not in` are true), except against null: `field == null` is true exactly when the
  field is missing or null, and `field in ["a", null]` also keeps samples without the field.
- Values compare by type and value, with no coercion: 1 == 1.0, but "1" != 1 and true != 1.
- `startswith` and `contains` are case-sensitive substring tests on strings; on anything else
  (a number, an object) they are false.
- `a.b` reads key `b` of object `a`; a path through something that is not an object is missing.
- Several expressions (several --where) are ANDed.
- A sample without metadata (no `json` member, or an empty one) is read as an empty object, so every
  field is missing: `x != "a"` keeps it, `x == "a"` drops it. For licences, name the ones you accept
  (`article_license in [...]` or `startswith`) rather than the ones you refuse, and samples without
  metadata are dropped. Metadata that is not valid JSON, or JSON that is not an object, matches
  nothing, not even a negative filter: nobody can tell what such a sample is.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

from biomedclip_cli.problems import Problem, ProblemFound, error, warning

OPTION = "--where"
DOCS = "docs/data.md#train-on-a-topic-of-biomedica"
FIX = f'write FIELD == "value"; see {DOCS}'
OPERATORS = "==, !=, in, not in, startswith, contains"
MAX_DEPTH = 64  # nested parentheses and nots; deeper is not a filter anyone writes by hand

Scalar = Union[str, int, float, bool, None]
Predicate = Callable[[Mapping[str, Any]], bool]

BIOMEDICA_CLASSES: Mapping[str, str] = MappingProxyType({
    "ambiguous": "Ambiguous",
    "chemical-structures": "Chemical Structures",
    "clinical-imaging": "Clinical Imaging",
    "graphs-and-networks": "Graphs and Networks",
    "illustrative-diagrams": "Illustrative Diagrams",
    "immuno-assays": "Immuno Assays",
    "laboratory-specimens-and-cultures": "Laboratory Specimens and Cultures",
    "maps": "Maps",
    "microscopy": "Microscopy",
    "natural-images": "Natural Images",
    "pcr": "PCR",
    "plots-and-charts": "Plots and Charts",
    "screen-based-visuals": "Screen Based Visuals",
    "scientific-formulae-and-equations": "Scientific Formulae and Equations",
    "tables": "Tables",
    "tools-and-materials": "Tools and Materials",
})
"""Short names of BIOMEDICA's 16 global classes (the taxonomy's `global_class`, a sample's `image_primary_label`)."""

CLASS_FIELD = "image_primary_label"

_KEYWORDS = frozenset({"and", "or", "not", "in", "startswith", "contains"})
_CONSTANTS: Mapping[str, Scalar] = {"true": True, "false": False, "null": None}
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_ESCAPES = frozenset("\"'\\")
_SYMBOLS = {"(": "(", ")": ")", "[": "[", "]": "]", ",": ","}


# --- errors --------------------------------------------------------------------------------------

def _shown(text: str) -> str:
    """The expression as quoted in a message: one line, each character still in its own column."""
    return "".join(c if c.isprintable() else " " for c in text)


def _problem(text: str, what: str, index: int, fix: str = FIX) -> ProblemFound:
    """The one-line error for `text` going wrong at 0-based `index`."""
    return ProblemFound(error(OPTION, f"{what} at column {index + 1} of '{_shown(text)}'", fix))


# --- tokens --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    """One token: `kind` is "name", "string", "number", "constant", "end", a keyword or a symbol such as "==" or "["."""

    kind: str
    text: str
    value: Scalar
    start: int


def _tokens(text: str) -> Iterator[_Token]:
    """The tokens of `text`, lazily, so that an error comes at the first place it goes wrong; ends with an "end" token."""
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            yield _Token("end", "", None, n)
            return
        c = text[i]
        if c in _NAME_START:
            j = _name_end(text, i)
            word = text[i:j]
            if word in _CONSTANTS:
                yield _Token("constant", word, _CONSTANTS[word], i)
            else:
                yield _Token(word if word in _KEYWORDS else "name", word, word, i)
            i = j
        elif c in _DIGITS or (c == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            j = _number_end(text, i)
            word = text[i:j]
            yield _Token("number", word, float(word) if "." in word else int(word), i)
            i = j
        elif c in "\"'":
            value, j = _string(text, i)
            yield _Token("string", text[i:j], value, i)
            i = j
        elif text.startswith(("==", "!="), i):
            yield _Token(text[i:i + 2], text[i:i + 2], None, i)
            i += 2
        elif c in _SYMBOLS:
            yield _Token(c, c, None, i)
            i += 1
        elif c in "=!":
            raise _problem(text, f"expected '{c}=' (two characters)", i, 'compare with == or !=, e.g. FIELD == "value"')
        elif c in "&|":
            raise _problem(text, f"unexpected character '{c}'", i, "combine conditions with and, or, not")
        else:
            shown = c if c.isprintable() and not c.isspace() else f"U+{ord(c):04X}"
            raise _problem(text, f"unexpected character '{shown}'", i)


def _name_end(text: str, i: int) -> int:
    """End of the (possibly dotted) name starting at `i`."""
    n = len(text)
    j = i + 1
    while j < n and text[j] in _NAME_CHARS:
        j += 1
    while j < n and text[j] == ".":
        if j + 1 >= n or text[j + 1] not in _NAME_START:
            raise _problem(text, "expected a field name after '.'", j + 1, "nested fields are written a.b")
        j += 2
        while j < n and text[j] in _NAME_CHARS:
            j += 1
    return j


def _number_end(text: str, i: int) -> int:
    """End of the number starting at `i` (an optional minus, digits, an optional fraction)."""
    n = len(text)
    j = i + 1
    while j < n and text[j] in _DIGITS:
        j += 1
    if j + 1 < n and text[j] == "." and text[j + 1] in _DIGITS:
        j += 2
        while j < n and text[j] in _DIGITS:
            j += 1
    if j < n and (text[j] in _NAME_CHARS or text[j] == "."):
        raise _problem(text, "malformed number", i, 'write numbers like 3, -2 or 0.5, and text in quotes: "3b"')
    return j


def _string(text: str, i: int) -> tuple[str, int]:
    """The value of the string literal opening at `i`, and the index just past its closing quote."""
    quote, n = text[i], len(text)
    parts: list[str] = []
    j = i + 1
    while j < n:
        c = text[j]
        if c == quote:
            return "".join(parts), j + 1
        if c == "\\":
            if j + 1 >= n:
                break
            escaped = text[j + 1]
            if escaped not in _ESCAPES:
                raise _problem(text, f"unknown escape '\\{escaped}'", j, "inside quotes only \\\" \\' and \\\\ are escapes")
            parts.append(escaped)
            j += 2
            continue
        parts.append(c)
        j += 1
    raise _problem(text, "unterminated string starting", i, f"end it with the quote it starts with ({quote})")


# --- syntax tree ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Compare:
    """FIELD OP VALUE; `values` holds the one value of ==, !=, startswith, contains, or the list of in, not in."""

    path: tuple[str, ...]
    op: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class _Not:
    """not OPERAND."""

    operand: _Node


@dataclass(frozen=True)
class _And:
    """OPERAND and OPERAND and ..."""

    operands: tuple[_Node, ...]


@dataclass(frozen=True)
class _Or:
    """OPERAND or OPERAND or ..."""

    operands: tuple[_Node, ...]


_Node = Union[_Compare, _Not, _And, _Or]


class _Parser:
    """Recursive descent over the grammar in the module docstring, one token of lookahead."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.token = next(self.tokens)
        self.depth = 0

    def parse(self) -> _Node:
        """The whole expression; anything left over is an error."""
        if self.token.kind == "end":
            fix = f'write FIELD == "value", e.g. image_primary_label == "Microscopy"; see {DOCS}'
            raise ProblemFound(error(OPTION, f"the expression is empty: '{_shown(self.text)}'", fix))
        node = self.or_expr()
        if self.token.kind == ")":
            raise self.fail("unmatched ')'", "remove it, or open it with '(' before")
        if self.token.kind != "end":
            raise self.fail("expected and, or, or the end of the expression", self.keyword_fix())
        return node

    def advance(self) -> _Token:
        """The current token, moving on to the next."""
        token = self.token
        if token.kind != "end":
            self.token = next(self.tokens)
        return token

    def fail(self, what: str, fix: str = FIX) -> ProblemFound:
        """An error at the current token."""
        return _problem(self.text, what, self.token.start, fix)

    def keyword_fix(self) -> str:
        """The fix for an unexpected word: keywords are lowercase, text values need quotes."""
        word = self.token.text
        if word.lower() in _KEYWORDS | _CONSTANTS.keys() and word != word.lower():
            return f"keywords are lowercase: write {word.lower()}"
        return FIX

    def or_expr(self) -> _Node:
        """and_expr ("or" and_expr)*."""
        operands = [self.and_expr()]
        while self.token.kind == "or":
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else _Or(tuple(operands))

    def and_expr(self) -> _Node:
        """not_expr ("and" not_expr)*."""
        operands = [self.not_expr()]
        while self.token.kind == "and":
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else _And(tuple(operands))

    def not_expr(self) -> _Node:
        """"not" not_expr | "(" or_expr ")" | comparison."""
        if self.token.kind not in ("not", "("):
            return self.comparison()
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"more than {MAX_DEPTH} nested parentheses or nots", "write a flatter expression")
        self.depth += 1
        opening = self.advance()
        if opening.kind == "not":
            node: _Node = _Not(self.not_expr())
        else:
            node = self.or_expr()
            if self.token.kind != ")":
                raise self.fail("expected ')'", f"close the '(' at column {opening.start + 1} with ')'")
            self.advance()
        self.depth -= 1
        return node

    def comparison(self) -> _Compare:
        """FIELD OP VALUE."""
        if self.token.kind != "name":
            raise self.fail("expected a field name", self.keyword_fix())
        path = tuple(self.advance().text.split("."))
        token = self.advance()
        if token.kind == "not":
            if self.token.kind != "in":
                raise self.fail("expected in after not", 'write FIELD not in ["a", "b"], or not FIELD == "a"')
            self.advance()
            return _Compare(path, "not in", self.list_value("not in"))
        if token.kind == "in":
            return _Compare(path, "in", self.list_value("in"))
        if token.kind in ("==", "!="):
            return _Compare(path, token.kind, (self.scalar(token.kind),))
        if token.kind in ("startswith", "contains"):
            if self.token.kind != "string":
                raise self.fail(f"expected a string after {token.kind}", f'write FIELD {token.kind} "text"')
            return _Compare(path, token.kind, (self.advance().value,))
        raise _problem(self.text, f"expected an operator ({OPERATORS})", token.start, self.keyword_fix_for(token))

    def keyword_fix_for(self, token: _Token) -> str:
        """keyword_fix for a token that is no longer current."""
        current, self.token = self.token, token
        try:
            return self.keyword_fix()
        finally:
            self.token = current

    def scalar(self, after: str) -> Scalar:
        """STRING | NUMBER | true | false | null."""
        if self.token.kind in ("string", "number", "constant"):
            return self.advance().value
        what = 'expected a value (a "string", a number, true, false or null)'
        if self.token.kind == "[":
            raise self.fail(what, f'a list [...] follows in or not in: write FIELD in ["a", "b"] rather than FIELD {after} [...]')
        if self.token.kind == "name":
            raise self.fail(what, f'put text in quotes: FIELD {after} "{self.token.text}"')
        raise self.fail(what, self.keyword_fix())

    def list_value(self, after: str) -> tuple[Scalar, ...]:
        """"[" [scalar ("," scalar)* [","]] "]"."""
        if self.token.kind != "[":
            fix = f'write FIELD {after} ["a", "b"]; for a part of a text, FIELD contains "a"'
            raise self.fail(f"expected a list [...] after {after}", fix)
        self.advance()
        values: list[Scalar] = []
        while self.token.kind != "]":
            values.append(self.scalar(after))
            if self.token.kind == ",":
                self.advance()
            elif self.token.kind != "]":
                raise self.fail("expected ',' or ']' in the list", f'write FIELD {after} ["a", "b"]')
        self.advance()
        return tuple(values)


# --- compiling -----------------------------------------------------------------------------------

def _getter(path: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
    """A function reading `path` from metadata; None where it is missing (or null)."""
    if len(path) == 1:
        key = path[0]
        return lambda metadata: metadata.get(key)

    def get(metadata: Mapping[str, Any]) -> Any:
        value: Any = metadata
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return get


def _equal_to_any(path: tuple[str, ...], values: tuple[Scalar, ...]) -> Predicate:
    """True where the field (or any element of it) equals one of `values`, by type and value."""
    get = _getter(path)
    texts = frozenset(v for v in values if isinstance(v, str))
    flags = frozenset(v for v in values if isinstance(v, bool))
    numbers = frozenset(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    null = any(v is None for v in values)

    def element(value: Any) -> bool:
        if isinstance(value, str):
            return value in texts
        if isinstance(value, bool):  # before int: True == 1 in Python, not here
            return value in flags
        if isinstance(value, (int, float)):
            return value in numbers
        return null and value is None

    def matches(metadata: Mapping[str, Any]) -> bool:
        value = get(metadata)
        if value is None:
            return null
        if isinstance(value, str):
            return value in texts
        if isinstance(value, (list, tuple)):
            return any(map(element, value))
        return element(value)

    return matches


def _text_test(path: tuple[str, ...], op: str, part: str) -> Predicate:
    """startswith or contains: true where the field is a string passing it, or a list with such a string."""
    get = _getter(path)
    starts = op == "startswith"

    def matches(metadata: Mapping[str, Any]) -> bool:
        value = get(metadata)
        if isinstance(value, str):
            return value.startswith(part) if starts else part in value
        if isinstance(value, (list, tuple)):
            for v in value:
                if isinstance(v, str) and (v.startswith(part) if starts else part in v):
                    return True
        return False

    return matches


def _negated(predicate: Predicate) -> Predicate:
    """not predicate."""
    return lambda metadata: not predicate(metadata)


def _compile(node: _Node) -> Predicate:
    """The predicate of a syntax tree: closures built once, nothing parsed or looked up per sample."""
    if isinstance(node, _Compare):
        if node.op in ("==", "in"):
            return _equal_to_any(node.path, node.values)
        if node.op in ("!=", "not in"):
            return _negated(_equal_to_any(node.path, node.values))
        return _text_test(node.path, node.op, str(node.values[0]))
    if isinstance(node, _Not):
        return _negated(_compile(node.operand))
    parts = tuple(_compile(operand) for operand in node.operands)
    if len(parts) == 2:
        first, second = parts
        if isinstance(node, _And):
            return lambda metadata: first(metadata) and second(metadata)
        return lambda metadata: first(metadata) or second(metadata)
    want = isinstance(node, _Or)  # the answer that ends the loop early: true for or, false for and

    def chain(metadata: Mapping[str, Any]) -> bool:
        for part in parts:
            if part(metadata) is want:
                return want
        return not want

    return chain


def _fields(node: _Node) -> Iterator[str]:
    """The field paths a syntax tree reads, dotted."""
    if isinstance(node, _Compare):
        yield ".".join(node.path)
    elif isinstance(node, _Not):
        yield from _fields(node.operand)
    else:
        for operand in node.operands:
            yield from _fields(operand)


# --- public API ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SampleFilter:
    """A parsed --where: `text` (the source, several expressions joined with and, for records), `fields` it reads.

    Make one with parse_where. It pickles as its text (data loader workers parse it again).
    """

    text: str
    fields: frozenset[str]
    _predicate: Predicate = field(repr=False, compare=False)

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a sample with this metadata (its JSON object, decoded) is kept."""
        return self._predicate(metadata)

    def matches_json(self, raw: bytes | str | None) -> bool:
        """Whether a sample with this raw `json` member is kept.

        None or empty is a sample without metadata, read as an empty object (every field missing);
        invalid JSON (or bytes that are not text) and JSON that is not an object match nothing.
        """
        metadata = metadata_object(raw)
        return metadata is not None and self._predicate(metadata)

    def __reduce__(self) -> tuple[Callable[[str], SampleFilter], tuple[str]]:
        """Pickle as the text: closures do not pickle, and the text parses to the same filter."""
        return _parse_one, (self.text,)


def metadata_object(raw: bytes | str | None) -> dict[str, Any] | None:
    """A sample's raw `json` member as --where reads it: none or empty is an empty object; None when it is not a JSON object."""
    if raw is None or not raw.strip():
        return {}
    try:
        metadata = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return metadata if isinstance(metadata, dict) else None


def _parse_one(text: str) -> SampleFilter:
    """The filter of one expression."""
    tree = _Parser(text).parse()
    return SampleFilter(text.strip(), frozenset(_fields(tree)), _compile(tree))


def parse_where(texts: Sequence[str]) -> SampleFilter | None:
    """The filter of the given --where expressions, ANDed; None for none. A lone string counts as one expression.

    Raises ProblemFound with a one-line --where error (column, what was expected, the expression) for bad syntax.
    """
    if isinstance(texts, str):
        texts = [texts]
    trees = [_Parser(text).parse() for text in texts]
    if not trees:
        return None
    if len(trees) == 1:
        return _parse_one(texts[0])
    combined = " and ".join(f"({text.strip()})" for text in texts)
    tree = _And(tuple(trees))
    return SampleFilter(combined, frozenset(_fields(tree)), _compile(tree))


def _class_key(name: str) -> str:
    """A class name as a BIOMEDICA_CLASSES key: "Clinical Imaging", "clinical_imaging" -> "clinical-imaging"."""
    return "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


def _quoted(value: str) -> str:
    """A string literal of the --where language for `value`."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def class_filter(names: Sequence[str], *, subject: str = OPTION) -> str:
    """The --where text keeping samples of the named BIOMEDICA global classes: `image_primary_label in ["Microscopy", ...]`.

    Names are BIOMEDICA_CLASSES keys ("clinical-imaging"); case, spaces and underscores do not matter, so the
    class itself ("Clinical Imaging") works too. Raises ProblemFound about `subject` naming an unknown one.
    """
    if isinstance(names, str):
        names = [names]
    valid = ", ".join(BIOMEDICA_CLASSES)
    if not names:
        raise ProblemFound(error(subject, "no class named", f"name at least one of: {valid}"))
    labels: list[str] = []
    for name in names:
        key = _class_key(name)
        if key not in BIOMEDICA_CLASSES:
            suggestion = closest(key, BIOMEDICA_CLASSES)
            hint = f"did you mean '{suggestion}'? " if suggestion else ""
            raise ProblemFound(error(subject, f"unknown BIOMEDICA class '{name}'", f"{hint}the classes are: {valid}"))
        if BIOMEDICA_CLASSES[key] not in labels:
            labels.append(BIOMEDICA_CLASSES[key])
    return f"{CLASS_FIELD} in [{', '.join(_quoted(label) for label in labels)}]"


def chosen_samples(where: Sequence[str], classes: str | None) -> SampleFilter | None:
    """The filter of `--where` expressions and a comma-separated `--classes` list, ANDed; None when neither is given.

    Raises ProblemFound naming --where or --classes, as parse_where and class_filter do.
    """
    names = [name for name in (classes or "").split(",") if name.strip()]
    return parse_where([*where, *([class_filter(names, subject="--classes")] if classes is not None else [])])


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name` (a likely typo's fix), or None when none is close."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_fields(where: SampleFilter, seen_keys: Iterable[Mapping[str, Any]]) -> list[str]:
    """The filter's fields (sorted) whose top-level key is in none of the metadata objects looked at: likely typos.

    With no metadata objects at all there is nothing to judge by, and none is reported.
    """
    keys: set[str] = set()
    looked = False
    for metadata in seen_keys:
        looked = True
        keys.update(metadata.keys())
    if not looked:
        return []
    return sorted(path for path in where.fields if path.split(".")[0] not in keys)


def unknown_field_warnings(where: SampleFilter, seen_keys: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """A --where warning for each field in none of the metadata objects looked at, with the closest field seen."""
    samples = list(seen_keys)
    keys = sorted({key for metadata in samples for key in metadata})
    problems = []
    reported: set[str] = set()
    for path in unknown_fields(where, samples):
        top, _, rest = path.partition(".")
        if top in reported:
            continue
        reported.add(top)
        suggestion = closest(top, keys)
        if suggestion:
            fix = f"did you mean '{suggestion}{'.' + rest if rest else ''}'?"
        else:
            fix = f"the fields seen are: {', '.join(keys)}" if keys else "the samples looked at have no metadata"
        count = "the sample" if len(samples) == 1 else f"the {len(samples)} samples"
        problems.append(warning(OPTION, f"field '{top}' is in none of {count} looked at, so it reads as missing", fix))
    return problems
