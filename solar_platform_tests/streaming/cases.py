"""The contract's conformance suite: payloads and what `contracts.parse_reading` must make of them.

Each case is a raw Kafka value (bytes, as the topic carries it) with the expected outcome: either the
`Reading` it yields or the `RejectReason` it is rejected with. The unit tests check the pure parser
against every case; the integration test runs the same list through the stream's Spark parser; the end-to-end test
publishes the malformed UTC cases and expects each one in `dead_letters` with its reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from solar_platform.contracts import PANEL_ID, PANEL_ID_MAX_LENGTH, POWER, STATUS, TIME, Reading, RejectReason

_DROP = object()  # marks a field left out of the message


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    payload: bytes
    expected: Reading | RejectReason
    source_zone: str = "UTC"

    @property
    def is_valid(self) -> bool:
        return isinstance(self.expected, Reading)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


_T0 = utc(2024, 5, 1, 12, 0, 0)
_BASE = {PANEL_ID: "panel-1", POWER: 250.5, STATUS: 1, TIME: "2024-05-01T12:00:00.000Z"}
_BASE_READING = Reading("panel-1", 250.5, 1, _T0)


def message(**fields: object) -> bytes:
    """The base message with some fields replaced (by contract key) or dropped (`_DROP`)."""
    body = dict(_BASE)
    for key, value in fields.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body).encode()


def raw(text: str) -> bytes:
    return text.encode()


def _reading(**changes: object) -> Reading:
    values = {"panel_id": _BASE_READING.panel_id, "power_w": _BASE_READING.power_w,
              "status": _BASE_READING.status, "time_utc": _BASE_READING.time_utc}
    values.update(changes)
    return Reading(**values)  # type: ignore[arg-type]


def _valid(name: str, payload: bytes, zone: str = "UTC", **changes: object) -> Case:
    return Case(name, payload, _reading(**changes), zone)


def _bad(name: str, payload: bytes, reason: RejectReason, zone: str = "UTC") -> Case:
    return Case(name, payload, reason, zone)


# Panel ids the contract refuses (each stays hostile after stripping): also used to attack the
# dashboards' SQL (deploy/test_grafana.py) and the API's routes.
HOSTILE_PANEL_IDS: dict[str, str] = {
    "single_quote": "panel'1",
    "double_quote": 'panel"1',
    "backtick": "panel`1",
    "semicolon": "panel-1;",
    "sql_or_true": "x' OR '1'='1",
    "sql_drop_table": "p1; DROP TABLE panelData",
    "sql_comment": "p1'-- ",
    "sql_union": "' UNION SELECT user, password FROM mysql.user -- ",
    "backslash_quote": "\\' OR 1=1 -- ",  # \' breaks out where only ' is doubled (MySQL reads \ as an escape)
    "trailing_backslash": "panel-1\\",
    "grafana_variable": "${panel}",
    "grafana_dollar_variable": "$panel",
    "grafana_macro": "$__timeFilter(time_data)",
    "template_braces": "{{panel}}",
    "template_brackets": "[[panel]]",
    "percent_encoded": "panel%3A1",
    "inner_newline": "panel\n1",
    "inner_carriage_return": "panel\r1",
    "inner_tab": "panel\t1",
    "inner_space": "panel 1",
    "nul": "panel\x001",
    "trailing_nul": "panel-1\x00",
    "escape_character": "panel\x1b[31m",
    "line_separator": "panel\u20281",
    "zero_width_space": "panel-1\u200b",
    "cyrillic_homoglyphs": "\u0440\u0430nel-1",  # "раnel-1": Cyrillic er and a
    "fullwidth_letters": "\uff50\uff41\uff4e\uff45\uff4c-1",
    "arabic_indic_digit": "panel-\u0661",
    "combining_accent": "pane\u0301l",
    "emoji": "panel-\u2600",
    "latin_letters_with_accents": "pa\u00f1el-\u00fc",
    "path_traversal": "../../etc",
    "windows_path": "..\\..\\x",
    "slash": "site/panel-1",
    "url_like": "http://x",
    "html": "<script>",
    "shell": "$(reboot)",
    "pipe_ampersand": "a|b&c",
    "too_long": "p" * (PANEL_ID_MAX_LENGTH + 1),
    "leading_hyphen": "-panel",
    "leading_dot": ".panel",
    "leading_underscore": "_panel",
    "leading_colon": ":panel",
    "only_dots": "..",
}

# The seed's field values in a template, for hand-written payloads with literals json.dumps won't write.
_AFTER_POWER = f'"{STATUS}": 1, "{TIME}": "2024-05-01T12:00:00Z"'
_REST = f'"{POWER}": 1, {_AFTER_POWER}'

VALID_CASES: tuple[Case, ...] = (
    # What the fleet sends: Reading.to_message().
    Case("fleet_message", json.dumps(_BASE_READING.to_message()).encode(), _BASE_READING),
    _valid("fleet_offline_row", json.dumps(Reading("panel-9", 0.0, 0, _T0).to_message()).encode(),
           panel_id="panel-9", power_w=0.0, status=0),
    # The seed's own variants: numbers as strings, "0" for offline rows, naive timestamps.
    _valid("seed_numbers_as_strings", message(**{POWER: "123.5", STATUS: "1"}), power_w=123.5),
    _valid("seed_offline_zero_strings", message(**{POWER: "0", STATUS: "0"}), power_w=0.0, status=0),
    _valid("seed_naive_space_with_micros", message(**{TIME: "2024-05-01 12:00:00.123456"}),
           time_utc=utc(2024, 5, 1, 12, 0, 0, 123000)),
    _valid("seed_naive_space_no_fraction", message(**{TIME: "2024-05-01 12:00:00"})),
    _valid("naive_t_separator", message(**{TIME: "2024-05-01T12:00:00"})),
    _valid("naive_one_fraction_digit", message(**{TIME: "2024-05-01 12:00:00.5"}),
           time_utc=utc(2024, 5, 1, 12, 0, 0, 500000)),
    _valid("naive_nine_fraction_digits_truncated", message(**{TIME: "2024-05-01 12:00:00.987654321"}),
           time_utc=utc(2024, 5, 1, 12, 0, 0, 987000)),
    _valid("naive_in_madrid_summer", message(**{TIME: "2024-05-01 14:00:00"}), "Europe/Madrid"),
    _valid("naive_in_madrid_winter", message(**{TIME: "2024-01-15 13:00:00.250"}), "Europe/Madrid",
           time_utc=utc(2024, 1, 15, 12, 0, 0, 250000)),
    _valid("naive_in_madrid_dst_gap", message(**{TIME: "2024-03-31 02:30:00"}), "Europe/Madrid",
           time_utc=utc(2024, 3, 31, 1, 30)),
    _valid("naive_in_madrid_dst_overlap", message(**{TIME: "2024-10-27 02:30:00"}), "Europe/Madrid",
           time_utc=utc(2024, 10, 27, 0, 30)),
    _valid("naive_in_new_york", message(**{TIME: "2024-05-01 08:00:00"}), "America/New_York"),
    _valid("zoned_z", message(**{TIME: "2024-05-01T12:00:00Z"})),
    _valid("zoned_plus_0100", message(**{TIME: "2024-05-01T13:00:00+01:00"})),
    _valid("zoned_plus_0100_no_colon", message(**{TIME: "2024-05-01 13:00:00.5+0100"}),
           time_utc=utc(2024, 5, 1, 12, 0, 0, 500000)),
    _valid("zoned_minus_0530", message(**{TIME: "2024-05-01T06:30:00-05:30"})),
    _valid("zoned_ignores_source_zone", message(**{TIME: "2024-05-01T13:00:00+01:00"}), "Asia/Tokyo"),
    _valid("zoned_crosses_midnight", message(**{TIME: "2024-05-02T01:30:00+13:30"})),
    _valid("timestamp_with_spaces_around", message(**{TIME: "  2024-05-01 12:00:00\t"})),
    # Numbers the contract reads like Python's float().
    _valid("power_integer", message(**{POWER: 300}), power_w=300.0),
    _valid("power_negative", message(**{POWER: -1.25}), power_w=-1.25),
    _valid("power_exponent", message(**{POWER: 1.5e3}), power_w=1500.0),
    _valid("power_string_with_spaces", message(**{POWER: " 12.5\n"}), power_w=12.5),
    _valid("power_string_underscores", message(**{POWER: "1_000.5"}), power_w=1000.5),
    _valid("power_string_exponent", message(**{POWER: "2.5E2"}), power_w=250.0),
    _valid("power_string_leading_dot", message(**{POWER: ".5"}), power_w=0.5),
    _valid("power_string_arabic_digits", message(**{POWER: "\u0661\u0662"}), power_w=12.0),
    _valid("power_decimal_precision", message(**{POWER: 0.1}), power_w=0.1),
    _valid("power_minus_zero_integer", raw(f'{{"{PANEL_ID}": "p", "{POWER}": -0, {_AFTER_POWER}}}'),
           panel_id="p", power_w=0.0),
    _valid("power_minus_zero_float", raw(f'{{"{PANEL_ID}": "p", "{POWER}": -0.0, {_AFTER_POWER}}}'),
           panel_id="p", power_w=-0.0),
    _valid("power_integral_float", raw(f'{{"{PANEL_ID}": "p", "{POWER}": 2.0, {_AFTER_POWER}}}'),
           panel_id="p", power_w=2.0),
    _valid("power_many_digits", raw(f'{{"{PANEL_ID}": "p", "{POWER}": 1.00000000000000000001, '
                                    f'"{STATUS}": 1, "{TIME}": "2024-05-01T12:00:00Z"}}'),
           panel_id="p", power_w=1.0),
    _valid("status_float", message(**{STATUS: 1.0})),
    _valid("status_string_float", message(**{STATUS: "1.0"})),
    _valid("status_exponent", message(**{STATUS: 1e0})),
    _valid("status_zero_negative", message(**{STATUS: "-0"}), status=0),
    # Panel ids.
    _valid("panel_id_stripped", message(**{PANEL_ID: "  panel-1 \u3000"})),
    _valid("panel_id_max_length", message(**{PANEL_ID: "p" * PANEL_ID_MAX_LENGTH}), panel_id="p" * PANEL_ID_MAX_LENGTH),
    _valid("panel_id_with_dot_underscore_colon_hyphen", message(**{PANEL_ID: "site-7:row_3.panel-12"}),
           panel_id="site-7:row_3.panel-12"),
    _valid("panel_id_one_character", message(**{PANEL_ID: "0"}), panel_id="0"),
    _valid("panel_id_uppercase", message(**{PANEL_ID: "PANEL-A1"}), panel_id="PANEL-A1"),
    _valid("panel_id_doubled_separators", message(**{PANEL_ID: "p--1..2__3::4"}), panel_id="p--1..2__3::4"),
    _valid("panel_id_trailing_newline_stripped", message(**{PANEL_ID: "panel-1\n"})),
    _valid("panel_id_integer", message(**{PANEL_ID: 17}), panel_id="17"),
    _valid("panel_id_big_integer", message(**{PANEL_ID: 12345678901234567890123}),
           panel_id="12345678901234567890123"),
    _valid("panel_id_float", raw(f'{{"{PANEL_ID}": 2.50, {_REST}}}'), panel_id="2.5", power_w=1.0),
    _valid("panel_id_float_integral", raw(f'{{"{PANEL_ID}": 3.0, {_REST}}}'), panel_id="3.0", power_w=1.0),
    _valid("panel_id_float_small", raw(f'{{"{PANEL_ID}": 1.5E-7, {_REST}}}'), panel_id="1.5e-07", power_w=1.0),
    _valid("panel_id_float_mid", raw(f'{{"{PANEL_ID}": 0.00012, {_REST}}}'), panel_id="0.00012", power_w=1.0),
    _valid("panel_id_bare_nan", raw(f'{{"{PANEL_ID}": NaN, {_REST}}}'), panel_id="NaN", power_w=1.0),
    # JSON details Python's json accepts.
    _valid("duplicate_key_last_wins", raw(f'{{"{PANEL_ID}": "a", "{PANEL_ID}": "b", {_REST}}}'),
           panel_id="b", power_w=1.0),
    _valid("utf8_bom", b"\xef\xbb\xbf" + message()),
    # JSON's other encodings: Python's json detects them from the first bytes.
    _valid("utf16_with_bom", message().decode().encode("utf-16")),
    _valid("utf32_little_endian", message().decode().encode("utf-32-le")),
    _valid("lone_surrogate_in_extra_field", raw(f'{{"{PANEL_ID}": "p", "x": "\\udc00", {_REST}}}'),
           panel_id="p", power_w=1.0),
    _valid("panel_id_float_exponent_form", raw(f'{{"{PANEL_ID}": 1e-5, {_REST}}}'), panel_id="1e-05", power_w=1.0),
    _valid("whitespace_around_json", b" \r\n\t" + message() + b"\n "),
    _valid("compact_fleet_encoding", json.dumps(_BASE_READING.to_message(), separators=(",", ":")).encode()),
    _valid("extra_fields_ignored", message(extra={"nested": [1, 2]}, note="hi")),
    _valid("nan_inside_string_is_text", message(**{PANEL_ID: "NaN-Infinity"}), panel_id="NaN-Infinity"),
    _valid("nan_in_extra_field", raw(f'{{"{PANEL_ID}": "p", "x": [NaN, -Infinity], {_REST}}}'),
           panel_id="p", power_w=1.0),
)

MALFORMED_CASES: tuple[Case, ...] = (
    # Not JSON, or not one JSON object.
    _bad("not_json", b"not json at all", RejectReason.INVALID_JSON),
    _bad("empty_payload", b"", RejectReason.INVALID_JSON),
    _bad("truncated_json", message()[:-5], RejectReason.INVALID_JSON),
    _bad("json_array", b"[" + message() + b"]", RejectReason.INVALID_JSON),
    _bad("json_string", b'"panel-1"', RejectReason.INVALID_JSON),
    _bad("json_number", b"42", RejectReason.INVALID_JSON),
    _bad("json_null", b"null", RejectReason.INVALID_JSON),
    _bad("trailing_text", message() + b" trailing", RejectReason.INVALID_JSON),
    _bad("two_objects", message() + message(), RejectReason.INVALID_JSON),
    _bad("line_separator_after_object", message() + "\u2028".encode(), RejectReason.INVALID_JSON),
    _bad("object_then_array_tail", message() + b'], ["x"', RejectReason.INVALID_JSON),
    _bad("object_then_brace_tail", message() + b"}", RejectReason.INVALID_JSON),
    _bad("single_quotes", message().replace(b'"', b"'"), RejectReason.INVALID_JSON),
    _bad("trailing_comma", message()[:-1] + b",}", RejectReason.INVALID_JSON),
    _bad("leading_zero_number", raw(f'{{"{PANEL_ID}": "p", "{POWER}": 01, "{STATUS}": 1, "{TIME}": "x"}}'),
         RejectReason.INVALID_JSON),
    _bad("invalid_utf8", b'{"' + PANEL_ID.encode() + b'": "p\xff\xfe", ' + _REST.encode() + b"}",
         RejectReason.INVALID_JSON),
    _bad("bare_nan_as_key", raw(f'{{NaN: 1, "{PANEL_ID}": "p", {_REST}}}'), RejectReason.INVALID_JSON),
    _bad("plus_infinity_literal", raw(f'{{"{PANEL_ID}": "p", "{POWER}": +Infinity, "{STATUS}": 1, "{TIME}": "x"}}'),
         RejectReason.INVALID_JSON),
    _bad("control_char_in_string", raw(f'{{"{PANEL_ID}": "a\nb", {_REST}}}'), RejectReason.INVALID_JSON),
    # Missing (absent or null) fields, in the contract's order of checks.
    _bad("missing_panel_id", message(**{PANEL_ID: _DROP}), RejectReason.MISSING_PANEL_ID),
    _bad("null_panel_id", message(**{PANEL_ID: None}), RejectReason.MISSING_PANEL_ID),
    _bad("missing_power", message(**{POWER: _DROP}), RejectReason.MISSING_POWER),
    _bad("null_power", message(**{POWER: None}), RejectReason.MISSING_POWER),
    _bad("missing_status", message(**{STATUS: _DROP}), RejectReason.MISSING_STATUS),
    _bad("null_status", message(**{STATUS: None}), RejectReason.MISSING_STATUS),
    _bad("missing_time", message(**{TIME: _DROP}), RejectReason.MISSING_TIME),
    _bad("null_time", message(**{TIME: None}), RejectReason.MISSING_TIME),
    _bad("empty_object", b"{}", RejectReason.MISSING_PANEL_ID),
    _bad("field_names_are_case_sensitive", message(**{PANEL_ID: _DROP, PANEL_ID.lower(): "p"}),
         RejectReason.MISSING_PANEL_ID),
    _bad("first_failing_rule_wins", message(**{POWER: _DROP, STATUS: 7, TIME: "bad"}), RejectReason.MISSING_POWER),
    # Panel id.
    _bad("empty_panel_id", message(**{PANEL_ID: ""}), RejectReason.INVALID_PANEL_ID),
    _bad("blank_panel_id", message(**{PANEL_ID: " \t "}), RejectReason.INVALID_PANEL_ID),
    _bad("boolean_panel_id", message(**{PANEL_ID: True}), RejectReason.INVALID_PANEL_ID),
    _bad("object_panel_id", message(**{PANEL_ID: {"id": "p"}}), RejectReason.INVALID_PANEL_ID),
    _bad("array_panel_id", message(**{PANEL_ID: ["p"]}), RejectReason.INVALID_PANEL_ID),
    # Panel id: only ASCII letters, digits and . _ : - (contracts.PANEL_ID_PATTERN), first a letter or digit.
    *(_bad(f"panel_id_{name}", message(**{PANEL_ID: panel_id}), RejectReason.INVALID_PANEL_ID)
      for name, panel_id in HOSTILE_PANEL_IDS.items()),
    _bad("panel_id_float_large", raw(f'{{"{PANEL_ID}": 1e16, {_REST}}}'), RejectReason.INVALID_PANEL_ID),  # "1e+16"
    _bad("panel_id_lone_surrogate", raw(f'{{"{PANEL_ID}": "p\\ud800", {_REST}}}'), RejectReason.INVALID_PANEL_ID),
    _bad("power_1001_digit_integer", message(**{POWER: int("9" * 1001)}), RejectReason.INVALID_POWER),
    _bad("panel_id_negative_number", message(**{PANEL_ID: -5}), RejectReason.INVALID_PANEL_ID),  # "-5"
    _bad("panel_id_bare_minus_infinity", raw(f'{{"{PANEL_ID}": -Infinity, {_REST}}}'), RejectReason.INVALID_PANEL_ID),
    _bad("panel_id_invalid_before_bad_power", message(**{PANEL_ID: "a b", POWER: "x"}), RejectReason.INVALID_PANEL_ID),
    # Power.
    _bad("power_bare_nan", raw(f'{{"{PANEL_ID}": "p", "{POWER}": NaN, "{STATUS}": 1, "{TIME}": "x"}}'),
         RejectReason.INVALID_POWER),
    _bad("power_bare_infinity", raw(f'{{"{PANEL_ID}": "p", "{POWER}": Infinity, "{STATUS}": 1}}'),
         RejectReason.INVALID_POWER),
    _bad("power_bare_minus_infinity", raw(f'{{"{PANEL_ID}": "p", "{POWER}": -Infinity}}'),
         RejectReason.INVALID_POWER),
    _bad("power_nan_string", message(**{POWER: "NaN"}), RejectReason.INVALID_POWER),
    _bad("power_inf_string", message(**{POWER: "inf"}), RejectReason.INVALID_POWER),
    _bad("power_minus_infinity_string", message(**{POWER: "-Infinity"}), RejectReason.INVALID_POWER),
    _bad("power_abc", message(**{POWER: "abc"}), RejectReason.INVALID_POWER),
    _bad("power_empty_string", message(**{POWER: ""}), RejectReason.INVALID_POWER),
    _bad("power_overflows_to_inf", raw(f'{{"{PANEL_ID}": "p", "{POWER}": 1e400, "{STATUS}": 1}}'),
         RejectReason.INVALID_POWER),
    _bad("power_string_overflows_to_inf", message(**{POWER: "1e400"}), RejectReason.INVALID_POWER),
    _bad("power_boolean", message(**{POWER: True}), RejectReason.INVALID_POWER),
    _bad("power_array", message(**{POWER: [1]}), RejectReason.INVALID_POWER),
    _bad("power_object", message(**{POWER: {"w": 1}}), RejectReason.INVALID_POWER),
    _bad("power_java_suffix", message(**{POWER: "1.5d"}), RejectReason.INVALID_POWER),
    _bad("power_hex_float", message(**{POWER: "0x1p3"}), RejectReason.INVALID_POWER),
    _bad("power_double_underscore", message(**{POWER: "1__0"}), RejectReason.INVALID_POWER),
    _bad("power_inner_space", message(**{POWER: "1 0"}), RejectReason.INVALID_POWER),
    # Long inputs (found by the fault suite's poison): Java's regex recursed once per repetition of a
    # group, and these overflowed the executor's stack, which took the whole stream down.
    _bad("power_3000_digit_string", message(**{POWER: "1" * 3000}), RejectReason.INVALID_POWER),
    _bad("power_bare_nan_in_a_long_message",
         raw(f'{{"{PANEL_ID}": "p", "note": "{"x" * 20_000}", "{POWER}": NaN, "{STATUS}": 1}}'),
         RejectReason.INVALID_POWER),
    # Status.
    _bad("status_2", message(**{STATUS: 2}), RejectReason.INVALID_STATUS),
    _bad("status_x", message(**{STATUS: "x"}), RejectReason.INVALID_STATUS),
    _bad("status_string_2", message(**{STATUS: "2"}), RejectReason.INVALID_STATUS),
    _bad("status_half", message(**{STATUS: 0.5}), RejectReason.INVALID_STATUS),
    _bad("status_boolean", message(**{STATUS: True}), RejectReason.INVALID_STATUS),
    _bad("status_minus_one", message(**{STATUS: -1}), RejectReason.INVALID_STATUS),
    _bad("status_bare_nan", raw(f'{{"{PANEL_ID}": "p", "{POWER}": 1, "{STATUS}": NaN}}'), RejectReason.INVALID_STATUS),
    _bad("status_nan_string", message(**{STATUS: "nan"}), RejectReason.INVALID_STATUS),
    # Time.
    _bad("time_not_a_time", message(**{TIME: "yesterday"}), RejectReason.INVALID_TIME),
    _bad("time_empty", message(**{TIME: ""}), RejectReason.INVALID_TIME),
    _bad("time_epoch_number", message(**{TIME: 1714564800}), RejectReason.INVALID_TIME),
    _bad("time_boolean", message(**{TIME: True}), RejectReason.INVALID_TIME),
    _bad("time_bare_nan", raw(f'{{"{PANEL_ID}": "p", "{POWER}": 1, "{STATUS}": 1, "{TIME}": NaN}}'),
         RejectReason.INVALID_TIME),
    _bad("time_slashes", message(**{TIME: "2024/05/01 12:00:00"}), RejectReason.INVALID_TIME),
    _bad("time_date_only", message(**{TIME: "2024-05-01"}), RejectReason.INVALID_TIME),
    _bad("time_lowercase_t", message(**{TIME: "2024-05-01t12:00:00"}), RejectReason.INVALID_TIME),
    _bad("time_lowercase_z", message(**{TIME: "2024-05-01T12:00:00z"}), RejectReason.INVALID_TIME),
    _bad("time_ten_fraction_digits", message(**{TIME: "2024-05-01T12:00:00.1234567890"}), RejectReason.INVALID_TIME),
    _bad("time_february_30", message(**{TIME: "2024-02-30 12:00:00"}), RejectReason.INVALID_TIME),
    _bad("time_month_13", message(**{TIME: "2024-13-01 12:00:00"}), RejectReason.INVALID_TIME),
    _bad("time_hour_24", message(**{TIME: "2024-05-01 24:00:00"}), RejectReason.INVALID_TIME),
    _bad("time_minute_60", message(**{TIME: "2024-05-01 12:60:00"}), RejectReason.INVALID_TIME),
    _bad("time_second_60", message(**{TIME: "2024-05-01 23:59:60"}), RejectReason.INVALID_TIME),
    _bad("time_year_zero", message(**{TIME: "0000-05-01 12:00:00"}), RejectReason.INVALID_TIME),
    _bad("time_offset_24h", message(**{TIME: "2024-05-01T12:00:00+24:00"}), RejectReason.INVALID_TIME),
    _bad("time_offset_hours_only", message(**{TIME: "2024-05-01T12:00:00+01"}), RejectReason.INVALID_TIME),
    _bad("time_fullwidth_digits", message(**{TIME: "２０２４-05-01 12:00:00"}), RejectReason.INVALID_TIME),
)

CASES: tuple[Case, ...] = VALID_CASES + MALFORMED_CASES

_names = [case.name for case in CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
