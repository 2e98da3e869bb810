"""--where: choosing BIOMEDICA samples by their JSON metadata, and the one-line errors for expressions that do not parse."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from biomedclip_cli.problems import ProblemFound, Severity
from biomedclip_cli.sample_filter import (
    BIOMEDICA_CLASSES,
    SampleFilter,
    class_filter,
    closest,
    parse_where,
    unknown_field_warnings,
    unknown_fields,
)

CT_SCAN = {
    "image_primary_label": ["Clinical Imaging"],
    "image_secondary_label": ["computerized tomography"],
    "image_panel_type": "single",
    "article_license": "CC BY 4.0",
    "article_mesh_terms": ["Humans", "Lung Neoplasms", "Tomography, X-Ray Computed"],
    "article_journal": "Radiology Case Reports",
    "article_date": "2021-03-04",
}
MOUSE_SLIDE = {
    "image_primary_label": ["Microscopy", "Immuno Assays"],
    "image_secondary_label": ["immunohistochemistry"],
    "image_panel_type": "multiple",
    "article_license": "CC BY-NC",
    "article_mesh_terms": ["Animals", "Mice", "Neoplasms, Experimental"],
    "article_journal": "Cancer Research",
    "article_date": "2019-11-20",
}
PLOT = {
    "image_primary_label": ["Plots and Charts"],
    "image_panel_type": "single",
    "article_license": "CC0",
    "article_mesh_terms": [],
}
SAMPLES = {"ct": CT_SCAN, "slide": MOUSE_SLIDE, "plot": PLOT}


def where(*texts: str) -> SampleFilter:
    """The filter of these --where expressions (at least one)."""
    result = parse_where(texts)
    assert result is not None
    return result


def kept(*texts: str) -> list[str]:
    """Names of the example samples that these --where expressions keep."""
    chosen = where(*texts)
    return [name for name, metadata in SAMPLES.items() if chosen.matches(metadata)]


def error_line(text: str) -> str:
    """The one line a user reads for an expression that does not parse."""
    with pytest.raises(ProblemFound) as raised:
        parse_where([text])
    line = raised.value.problem.line()
    assert "\n" not in line
    return line


# --- choosing samples ----------------------------------------------------------------------------

def test_equality_on_a_list_field_matches_any_element() -> None:
    assert kept('image_primary_label == "Microscopy"') == ["slide"]
    assert kept('image_primary_label == "Immuno Assays"') == ["slide"]
    assert kept('image_panel_type == "single"') == ["ct", "plot"]


def test_not_equal_is_exactly_not_equal() -> None:
    assert kept('image_primary_label != "Microscopy"') == ["ct", "plot"]
    assert kept('not image_primary_label == "Microscopy"') == ["ct", "plot"]


def test_in_a_list_of_values() -> None:
    assert kept('image_primary_label in ["Clinical Imaging", "Microscopy"]') == ["ct", "slide"]
    assert kept("image_primary_label not in ['Clinical Imaging', 'Microscopy']") == ["plot"]
    assert kept("image_primary_label in []") == []
    assert kept('image_panel_type in ["single", "multiple",]') == ["ct", "slide", "plot"]


def test_licence_prefix_keeps_cc_by_and_its_variants_but_not_cc0() -> None:
    licence = where('article_license startswith "CC BY"')
    assert licence.matches({"article_license": "CC BY 4.0"})
    assert licence.matches({"article_license": "CC BY-SA"})
    assert licence.matches({"article_license": "CC BY-NC"})
    assert not licence.matches({"article_license": "CC0"})
    assert not licence.matches({"article_license": "cc by 4.0"})  # case-sensitive
    commercial = where('article_license startswith "CC BY"', 'article_license not in ["CC BY-NC", "CC BY-NC-SA", "CC BY-NC-ND"]')
    assert [name for name, sample in SAMPLES.items() if commercial.matches(sample)] == ["ct"]


def test_contains_on_mesh_terms_is_a_substring_of_any_term() -> None:
    assert kept('article_mesh_terms contains "Neoplasm"') == ["ct", "slide"]
    assert kept('article_mesh_terms contains "Mice"') == ["slide"]
    assert kept('not article_mesh_terms contains "Mice"') == ["ct", "plot"]
    assert kept('article_journal contains "Radiology"') == ["ct"]
    assert not where('n contains "1"').matches({"n": [1, 12]})  # numbers are not text


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    # or is loosest: (ct) or (slide and single) -> ct only, the slide is "multiple"
    assert kept('image_primary_label == "Clinical Imaging" or image_primary_label == "Microscopy" and image_panel_type == "single"') == [
        "ct"]
    grouped = '(image_primary_label == "Clinical Imaging" or image_primary_label == "Microscopy") and image_panel_type == "multiple"'
    assert kept(grouped) == ["slide"]
    # not applies to the comparison next to it only
    assert kept('not image_panel_type == "single" and article_license == "CC BY-NC"') == ["slide"]
    assert kept('not (image_panel_type == "single" and article_license == "CC0")') == ["ct", "slide"]
    assert kept('not not image_panel_type == "multiple"') == ["slide"]
    assert kept('article_license == "CC0" or article_license == "CC BY 4.0" or article_license == "nope"') == ["ct", "plot"]
    assert kept('image_panel_type == "single" and article_license startswith "CC" and article_mesh_terms contains "Lung"') == ["ct"]


def test_missing_and_null_fields() -> None:
    # the plot has no secondary label: == is false, != is true
    assert kept('image_secondary_label == "immunohistochemistry"') == ["slide"]
    assert kept('image_secondary_label != "immunohistochemistry"') == ["ct", "plot"]
    assert kept('image_secondary_label contains "tomography"') == ["ct"]
    assert kept('image_secondary_label not in ["immunohistochemistry"]') == ["ct", "plot"]
    # == null is true exactly for a missing or null field
    assert kept("image_secondary_label == null") == ["plot"]
    assert where("x == null").matches({"x": None})
    assert where('x in ["a", null]').matches({})
    assert where("x != null").matches({"x": ""})
    # nested fields, and paths through something that is not an object
    nested = where('meta.source.kind == "pmc"')
    assert nested.matches({"meta": {"source": {"kind": "pmc"}}})
    assert not nested.matches({"meta": {"source": "pmc"}})
    assert not nested.matches({"meta": ["source"]})
    assert where('meta.source.kind != "pmc"').matches({})


def test_numbers_compare_by_value_without_coercion() -> None:
    assert where("year == 2021").matches({"year": 2021})
    assert where("year == 2021.0").matches({"year": 2021})
    assert where("score == 0.5").matches({"score": 0.5})
    assert where("delta in [-2, 3]").matches({"delta": -2})
    assert not where("year == 2021").matches({"year": "2021"})  # a string is not a number
    assert not where('year == "2021"').matches({"year": 2021})
    assert where("year == 2021").matches({"year": [2019, 2021]})
    assert where("flag == true").matches({"flag": True})
    assert not where("flag == true").matches({"flag": 1})  # true is not 1
    assert not where("count == 1").matches({"count": True})
    assert where("count != 1").matches({"count": True})


def test_string_escapes() -> None:
    assert where(r'caption == "a \"quoted\" word"').matches({"caption": 'a "quoted" word'})
    assert where(r"caption == 'it\'s'").matches({"caption": "it's"})
    assert where(r'caption == "back\\slash"').matches({"caption": "back\\slash"})
    assert where("caption == 'say \"hi\"'").matches({"caption": 'say "hi"'})


def test_several_expressions_are_anded() -> None:
    both = where('image_panel_type == "single"', 'article_license startswith "CC BY"')
    assert [name for name, sample in SAMPLES.items() if both.matches(sample)] == ["ct"]
    assert both.text == '(image_panel_type == "single") and (article_license startswith "CC BY")'
    assert both.fields == frozenset({"image_panel_type", "article_license"})
    assert parse_where([]) is None


def test_text_and_fields_for_records() -> None:
    one = where('  image_primary_label == "Maps" or meta.kind == "x"  ')
    assert one.text == 'image_primary_label == "Maps" or meta.kind == "x"'
    assert one.fields == frozenset({"image_primary_label", "meta.kind"})
    assert parse_where(['image_panel_type == "single"']) == parse_where([' image_panel_type == "single"\n'])  # filters equal by their text


def test_a_filter_survives_pickling_for_data_loader_workers() -> None:
    both = where('image_panel_type == "single"', 'article_license startswith "CC BY"')
    copy = pickle.loads(pickle.dumps(both))
    assert copy == both
    assert [copy.matches(sample) for sample in SAMPLES.values()] == [both.matches(sample) for sample in SAMPLES.values()]


def test_matching_a_raw_json_member() -> None:
    single = where('image_panel_type == "single"')
    assert single.matches_json(json.dumps(CT_SCAN).encode())
    assert single.matches_json(json.dumps(CT_SCAN))
    assert not single.matches_json(json.dumps(MOUSE_SLIDE).encode())
    # no metadata is an empty object: every field missing
    assert not single.matches_json(None)
    assert not single.matches_json(b"")
    assert where('image_panel_type != "single"').matches_json(None)
    # broken metadata, or metadata that is not an object, matches nothing, not even !=
    negative = where('image_panel_type != "single"')
    for raw in (b"{not json", b"[1, 2]", b'"single"', b"\xff\xfe\xfa", b"null"):
        assert not negative.matches_json(raw)


# --- named classes -------------------------------------------------------------------------------

def test_the_sixteen_biomedica_classes() -> None:
    assert len(BIOMEDICA_CLASSES) == 16
    assert BIOMEDICA_CLASSES["clinical-imaging"] == "Clinical Imaging"
    assert BIOMEDICA_CLASSES["microscopy"] == "Microscopy"
    assert BIOMEDICA_CLASSES["pcr"] == "PCR"


def test_class_filter_writes_an_in_expression() -> None:
    text = class_filter(["clinical-imaging", "microscopy"])
    assert text == 'image_primary_label in ["Clinical Imaging", "Microscopy"]'
    assert kept(text) == ["ct", "slide"]
    assert class_filter(["Clinical Imaging", "clinical_imaging", "PCR"]) == 'image_primary_label in ["Clinical Imaging", "PCR"]'
    assert kept(class_filter(["plots-and-charts"]), 'article_license == "CC0"') == ["plot"]


def test_an_unknown_class_names_it_and_lists_the_valid_ones() -> None:
    with pytest.raises(ProblemFound) as raised:
        class_filter(["microscopy", "microscopie"])
    line = raised.value.problem.line()
    assert line.startswith("--where: unknown BIOMEDICA class 'microscopie'; did you mean 'microscopy'? the classes are: ambiguous, ")
    assert all(name in line for name in BIOMEDICA_CLASSES)
    with pytest.raises(ProblemFound) as raised:
        class_filter(["xyz"], subject="--class")
    assert raised.value.problem.line().startswith("--class: unknown BIOMEDICA class 'xyz'; the classes are: ")


# --- typos in field names ------------------------------------------------------------------------

def test_unknown_fields_with_a_suggestion() -> None:
    typo = where('image_primary_lable == "Microscopy" and article_license startswith "CC BY" and zzz.x == 1')
    assert unknown_fields(typo, [CT_SCAN, PLOT]) == ["image_primary_lable", "zzz.x"]
    assert unknown_fields(where('image_secondary_label == "x"'), [PLOT, MOUSE_SLIDE]) == []  # in one sample is enough
    assert unknown_fields(typo, []) == []  # nothing looked at, nothing to judge by
    assert closest("image_primary_lable", CT_SCAN) == "image_primary_label"
    assert closest("zzz", CT_SCAN) is None

    warnings = unknown_field_warnings(typo, [CT_SCAN, PLOT])
    assert [problem.severity for problem in warnings] == [Severity.WARNING, Severity.WARNING]
    assert warnings[0].line() == ("--where: field 'image_primary_lable' is in none of the 2 samples looked at, so it reads as missing; "
                                  "did you mean 'image_primary_label'?")
    assert warnings[1].line().startswith("--where: field 'zzz' is in none of the 2 samples")
    assert warnings[1].line().endswith("the fields seen are: article_date, article_journal, article_license, article_mesh_terms, "
                                       "image_panel_type, image_primary_label, image_secondary_label")


# --- errors --------------------------------------------------------------------------------------

FIX = 'write FIELD == "value"; see docs/data.md#train-on-a-topic-of-biomedica'


@pytest.mark.parametrize(("text", "line"), [
    ('image_primary_label is "x"',
     f"--where: expected an operator (==, !=, in, not in, startswith, contains) at column 21 of 'image_primary_label is \"x\"'; {FIX}"),
    ("", "--where: the expression is empty: ''; write FIELD == \"value\", e.g. image_primary_label == \"Microscopy\"; "
         "see docs/data.md#train-on-a-topic-of-biomedica"),
    ("   ", "--where: the expression is empty: '   '; write FIELD == \"value\", e.g. image_primary_label == \"Microscopy\"; "
            "see docs/data.md#train-on-a-topic-of-biomedica"),
    ('license == "CC BY', "--where: unterminated string starting at column 12 of 'license == \"CC BY'; "
                          "end it with the quote it starts with (\")"),
    ("license == 'CC BY\\'", "--where: unterminated string starting at column 12 of 'license == 'CC BY\\''; "
                            "end it with the quote it starts with (')"),
    ('x == "a\\n"', "--where: unknown escape '\\n' at column 8 of 'x == \"a\\n\"'; inside quotes only \\\" \\' and \\\\ are escapes"),
    ('x == "a" y == "b"', f"--where: expected and, or, or the end of the expression at column 10 of 'x == \"a\" y == \"b\"'; {FIX}"),
    ('x == "a" AND y == "b"', "--where: expected and, or, or the end of the expression at column 10 of 'x == \"a\" AND y == \"b\"'; "
                              "keywords are lowercase: write and"),
    ('x in "a"', "--where: expected a list [...] after in at column 6 of 'x in \"a\"'; "
                 "write FIELD in [\"a\", \"b\"]; for a part of a text, FIELD contains \"a\""),
    ("x not in 3", "--where: expected a list [...] after not in at column 10 of 'x not in 3'; "
                   "write FIELD not in [\"a\", \"b\"]; for a part of a text, FIELD contains \"a\""),
    ('x in ["a" "b"]', "--where: expected ',' or ']' in the list at column 11 of 'x in [\"a\" \"b\"]'; write FIELD in [\"a\", \"b\"]"),
    ('x in ["a"', "--where: expected ',' or ']' in the list at column 10 of 'x in [\"a\"'; write FIELD in [\"a\", \"b\"]"),
    ('x == ["a"]', "--where: expected a value (a \"string\", a number, true, false or null) at column 6 of 'x == [\"a\"]'; "
                   "a list [...] follows in or not in: write FIELD in [\"a\", \"b\"] rather than FIELD == [...]"),
    ("x == Microscopy", "--where: expected a value (a \"string\", a number, true, false or null) at column 6 of 'x == Microscopy'; "
                        "put text in quotes: FIELD == \"Microscopy\""),
    ("x ==", f"--where: expected a value (a \"string\", a number, true, false or null) at column 5 of 'x =='; {FIX}"),
    ('x = "a"', "--where: expected '==' (two characters) at column 3 of 'x = \"a\"'; compare with == or !=, e.g. FIELD == \"value\""),
    ('x == "a" && y == "b"', "--where: unexpected character '&' at column 10 of 'x == \"a\" && y == \"b\"'; "
                             "combine conditions with and, or, not"),
    ("x == $5", f"--where: unexpected character '$' at column 6 of 'x == $5'; {FIX}"),
    ("x == 1e5", "--where: malformed number at column 6 of 'x == 1e5'; write numbers like 3, -2 or 0.5, and text in quotes: \"3b\""),
    ("x. == 1", "--where: expected a field name after '.' at column 3 of 'x. == 1'; nested fields are written a.b"),
    ('x not == "a"', "--where: expected in after not at column 7 of 'x not == \"a\"'; "
                     "write FIELD not in [\"a\", \"b\"], or not FIELD == \"a\""),
    ("x startswith 3", "--where: expected a string after startswith at column 14 of 'x startswith 3'; write FIELD startswith \"text\""),
    ('== "a"', f"--where: expected a field name at column 1 of '== \"a\"'; {FIX}"),
    ('x == "a" and', f"--where: expected a field name at column 13 of 'x == \"a\" and'; {FIX}"),
    ('(x == "a" or y == "b"', "--where: expected ')' at column 22 of '(x == \"a\" or y == \"b\"'; close the '(' at column 1 with ')'"),
    ('x == "a")', "--where: unmatched ')' at column 9 of 'x == \"a\")'; remove it, or open it with '(' before"),
    ('x ==\n"a" b', f"--where: expected and, or, or the end of the expression at column 10 of 'x == \"a\" b'; {FIX}"),
])
def test_syntax_errors_are_one_line_with_the_column(text: str, line: str) -> None:
    assert error_line(text) == line


def test_too_deep_nesting_is_an_error_not_a_crash() -> None:
    text = "(" * 200 + 'x == "a"' + ")" * 200
    assert error_line(text).startswith("--where: more than 64 nested parentheses or nots at column 65 of '((((")
    assert error_line("not " * 100 + 'x == "a"').startswith("--where: more than 64 nested parentheses or nots at column 257 of 'not not")


def test_the_error_in_a_second_expression_names_that_expression() -> None:
    with pytest.raises(ProblemFound) as raised:
        parse_where(['x == "a"', "y in 3"])
    assert raised.value.problem.line().startswith("--where: expected a list [...] after in at column 6 of 'y in 3'")


def test_no_message_names_a_python_exception() -> None:
    for text in ('x == "a', "x == [", "(((", "x in [1,,2]", "x == 1.", "x == -", "é == 1", "x == 'a' or"):
        line = error_line(text)
        assert not any(word in line for word in ("Error", "Exception", "Traceback", "token"))


@pytest.mark.parametrize("template", [
    '__import__("os").system("touch {path}")',
    "image_primary_label == \"a\" or __import__('os').system('touch {path}')",
    'image_primary_label == open("{path}", "w")',
    'exec("open(\'{path}\', \'w\')")',
    'image_primary_label in [__import__("os").system("touch {path}")]',
])
def test_an_expression_that_tries_to_run_code_is_rejected_and_runs_nothing(template: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    text = template.format(path=target)
    line = error_line(text)
    assert line.startswith("--where: expected ")
    assert f"of '{text}'" in line
    assert not target.exists()


def test_code_injection_columns_are_exact() -> None:
    assert error_line('__import__("os").system("touch X")').startswith(
        "--where: expected an operator (==, !=, in, not in, startswith, contains) at column 11 of ")
    assert error_line("image_primary_label == \"a\" or __import__('os')").startswith(
        "--where: expected an operator (==, !=, in, not in, startswith, contains) at column 41 of ")
