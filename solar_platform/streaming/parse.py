"""The message contract as Spark column expressions: `contracts.parse_reading`, row by row, in the JVM.

`contracts.parse_reading` is the definition; this module mirrors it rule for rule, in the same
order, with the same reasons, and takes every field name, pattern and reason from `contracts`.
`solar_platform_tests/streaming/cases.py` holds the payloads both must agree on.

Where Python's `json` and Spark's JSON readers differ, the differences are bridged here:

- Types: `from_json` with string fields turns `true`, `{...}` and `12` into text, losing the JSON type
  that the pure parser looks at. Each payload is therefore parsed as a VARIANT (`try_parse_json`),
  whose `schema_of_variant` tells a string from a number, a boolean or a container.
- Strictness: Python rejects text after the first JSON value (`{..} x`); Spark's parsers stop at the
  first value and ignore the rest. Parsing the payload also wrapped in `[...]` and `{"k": ...}` catches
  it: any tail that closes one wrapper early breaks the other (see `_is_one_json_object`).
- `NaN`, `Infinity`, `-Infinity`: Python's `json` accepts these bare literals (and `json.dumps`
  writes them for a NaN power), the VARIANT parser rejects them. Outside strings they are rewritten
  to a sentinel string first, so they reach the field rules as the non-finite numbers Python sees.
- Duplicate keys: the last one wins in both (`spark.sql.variant.allowDuplicateKeys`, see SESSION_CONF).
- Numbers in strings follow Python's `float()`: surrounding Unicode whitespace, `_` between digits,
  non-ASCII decimal digits, `inf`/`nan` words; Java-only forms (`1.5d`, `0x1p3`) are not numbers.
- A numeric `Panel_id` becomes `json.dumps(number)`: integers keep their digits, floats take
  Python's `repr` (rebuilt here from Java's `Double.toString`).

The work is split into successive projections (`_stage`) rather than one nested expression: every
rule reuses the previous ones' results, and one expression would repeat them exponentially (a
10 MB task and a 30 s compile for a one-row batch).

Known, deliberate gaps (none reachable by the fleet or the seed): payloads in UTF-16/32 (Python
detects them; here they are invalid JSON), escaped lone surrogates, numbers of 1,000+ digits,
and non-integral numeric panel ids whose JDK 17 `Double.toString` is not the shortest repr.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from functools import cache

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import StringType, StructField, StructType

from solar_platform import contracts
from solar_platform.contracts import RejectReason

# Output columns: the contract's own names, which are also panelData's columns.
PANEL_ID = contracts.PANEL_ID
POWER = contracts.POWER
STATUS = contracts.STATUS
TIME = contracts.TIME
READING_COLUMNS = contracts.FIELDS
REJECT_REASON = "reject_reason"

# Session settings the expressions rely on (see `configure_session`).
SESSION_CONF = {
    "spark.sql.variant.allowDuplicateKeys": "true",  # Python's json keeps the last duplicate key
    "spark.sql.session.timeZone": "UTC",  # wall clocks are built as UTC instants, then shifted
}

# A bare NaN/Infinity literal becomes this JSON string (as escaped text) followed by the literal.
_SENTINEL_VALUE = "\x00solar:non-finite\x00"
_SENTINEL_JSON = "\\u0000solar:non-finite\\u0000"
_JSON_WS = "[ \\t\\n\\r]"  # JSON's whitespace: the only one Python's json and Jackson allow
_NON_FINITE_LITERAL = "-?Infinity|NaN"  # what Python's json.loads accepts beyond RFC 8259
# A literal outside strings: followed by an even number of unescaped quotes up to the end.
# Possessive (`*+`) groups: Java's regex recurses once per iteration of a plain `(...)*`, and a
# long message (a few thousand characters) overflowed the executor's stack, killing the stream.
_OUTSIDE_STRINGS = r'(?=(?:[^"\\]|\\.)*+(?:"(?:[^"\\]|\\.)*+"(?:[^"\\]|\\.)*+)*+\z)'

# Python's float(): optional sign, digits with single '_' between them, optional exponent.
_DIGITS = "[0-9](?:_?[0-9])*+"  # possessive, like _OUTSIDE_STRINGS: a 3,000-digit string must not overflow
_PY_FLOAT = rf"^[+-]?(?:(?:{_DIGITS})?\.{_DIGITS}|{_DIGITS}\.?)(?:[eE][+-]?{_DIGITS})?$"
_PY_NON_FINITE = r"(?i)^[+-]?(?:inf|infinity|nan)$"
# Java's Double.toString: "123.45", "1.0E16", "-1.5E-7".
_JAVA_DOUBLE = r"^(-?)([0-9]+)\.([0-9]+)(?:E(-?[0-9]+))?$"

_NUMBER_TYPES = r"^(TINYINT|SMALLINT|INT|BIGINT|FLOAT|DOUBLE|DECIMAL)"
# The JSON kind of a field, as contracts.parse_reading tells them apart.
MISSING, STRING, NUMBER, NON_FINITE, BOOLEAN, CONTAINER = (
    "missing", "string", "number", "non_finite", "boolean", "container")

_FIELD_KEYS = {PANEL_ID: "panel", POWER: "power", STATUS: "status", TIME: "time"}


@cache
def _python_whitespace_class() -> str:
    """A Java regex class of exactly the characters Python's str.strip() removes."""
    spaces = (chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace())
    return "[" + "".join(f"\\u{ord(char):04x}" for char in spaces) + "]"


@cache
def _unicode_decimal_digits() -> tuple[str, str]:
    """(non-ASCII decimal digits, their ASCII values): Python's float() reads them as 0-9."""
    digits = [chr(code) for code in range(128, sys.maxunicode + 1)
              if unicodedata.decimal(chr(code), None) is not None]
    return "".join(digits), "".join(str(unicodedata.decimal(char)) for char in digits)


def _python_strip(text: Column) -> Column:
    """text.strip() in Python; the regex only runs when an end is blank (it is the slow part)."""
    space = _python_whitespace_class()
    blank_end = sf.substring(text, 1, 1).rlike(space) | sf.substring(text, -1, 1).rlike(space)
    return sf.when(blank_end, sf.regexp_replace(text, rf"\A{space}+|{space}+\z", "")).otherwise(text)


def _col(name: str) -> Column:
    return sf.col(f"_p_{name}")


def _stage(frame: DataFrame, guard: Column | None = None, **columns: Column) -> DataFrame:
    """Add `_p_<name>` columns in one projection (see the module docstring for why stages).

    With a `guard`, each column is only computed where the guard holds (null elsewhere).
    """
    return frame.select("*", *(
        (expression if guard is None else sf.when(guard, expression)).alias(f"_p_{name}")
        for name, expression in columns.items()
    ))


def _sanitized_json(value: Column) -> Column:
    """The payload as text, with a UTF-8 BOM dropped and bare NaN/Infinity rewritten to a sentinel."""
    bom = sf.lit(bytearray(b"\xef\xbb\xbf"))
    body = sf.when(sf.substring(value, 1, 3) == bom, sf.substring(value, 4, 2**31 - 1)).otherwise(value)
    text = body.cast("string")
    replacement = '"' + _SENTINEL_JSON.replace("\\", "\\\\") + '$1"'
    rewritten = sf.regexp_replace(text, f"({_NON_FINITE_LITERAL}){_OUTSIDE_STRINGS}", replacement)
    return sf.when(text.rlike(_NON_FINITE_LITERAL), rewritten).otherwise(text)


def _is_one_json_object(value: Column, text: Column, document: Column) -> Column:
    """True when `text` is exactly one JSON object with only whitespace around it.

    Spark's parsers ignore what follows the first value, so after it parses (`{..} x` too) the text
    is checked twice more, wrapped as `[text]` (must hold one element) and as `{"k": text}` (must
    parse). A tail that starts with `]` ends the array early but breaks the object; one that starts
    with `}` ends the object early but breaks the array; one that starts with `,` adds an element.
    The wrappers use Spark's streaming JSON functions: they validate without building values.
    """
    as_array_length = sf.json_array_length(sf.concat(sf.lit("["), text, sf.lit("]")))
    as_member_keys = sf.json_object_keys(sf.concat(sf.lit('{"k":'), text, sf.lit("}")))
    sentinel_key = rf'"\Q{_SENTINEL_JSON}\E(?:{_NON_FINITE_LITERAL})"{_JSON_WS}*:'
    one_object = (
        value.isNotNull()
        & sf.is_valid_utf8(text)
        & text.rlike(f"^{_JSON_WS}*\\{{")
        & document.isNotNull()
        & (as_array_length == 1)
        & as_member_keys.isNotNull()
        # A bare literal is never a key in Python's json; rewritten, it would parse as one.
        & ~text.rlike(sentinel_key)
    )
    return sf.coalesce(one_object, sf.lit(False))


def _field_kind(type_name: Column, text: Column) -> Column:
    return (
        sf.when(type_name.isNull() | (type_name == "VOID"), sf.lit(MISSING))
        .when((type_name == "STRING") & text.startswith(sf.lit(_SENTINEL_VALUE)), sf.lit(NON_FINITE))
        .when(type_name == "STRING", sf.lit(STRING))
        .when(type_name == "BOOLEAN", sf.lit(BOOLEAN))
        .when(type_name.rlike(_NUMBER_TYPES), sf.lit(NUMBER))
        .otherwise(sf.lit(CONTAINER))
    )


def _python_number(kind: Column, token: Column, ascii_text: Column) -> Column:
    """contracts._number(value) as a double, null where it returns None.

    `token` is a JSON number's text, `ascii_text` a JSON string's, stripped, in ASCII digits.

    Only finiteness and equality with 0/1 are asked of non-finite values, so each one is NaN.
    """
    from_string = (
        sf.when(ascii_text.rlike(_PY_NON_FINITE), sf.lit(float("nan")))
        .when(ascii_text.rlike(_PY_FLOAT), sf.regexp_replace(ascii_text, "_", "").try_cast("double"))
    )
    return (
        sf.when(kind == NUMBER, token.try_cast("double"))
        .when(kind == NON_FINITE, sf.lit(float("nan")))
        .when(kind == STRING, from_string)
    )


def _canonical_message() -> str:
    """A Java regex for the plain shape the fleet and the seed send, capturing the four values.

    Such a message needs no JSON parser: exactly the contract's four keys in order, a printable
    ASCII panel id of 1-64 characters (nothing to strip), a plain finite number, status 0 or 1, and a
    timestamp-looking string (still checked by `_timestamp_utc`). Anything else takes the full path.
    """
    ws = f"{_JSON_WS}*"
    key = {name: rf"{ws}\Q{json.dumps(name)}\E{ws}:{ws}" for name in READING_COLUMNS}
    panel = r'"([\x21\x23-\x5b\x5d-\x7e]{1,' + str(contracts.PANEL_ID_MAX_LENGTH) + r'})"'
    # Not "-0": Python reads that integer as 0, where a double cast gives -0.0.
    number = r"((?!-0(?![.]))-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,17})?)"
    status = "([" + "".join(str(code) for code in contracts.VALID_STATUSES) + "])"
    moment = r'"([0-9][0-9TZ:. +-]{8,38}[0-9Z])"'
    return (
        rf"^{ws}\{{{key[PANEL_ID]}{panel}{ws},{key[POWER]}{number}{ws},{key[STATUS]}{status}{ws},"
        rf"{key[TIME]}{moment}{ws}\}}{ws}\z"  # \z: Java's $ also matches before a final U+2028
    )


def _parse_fields(frame: DataFrame, value: Column, source_zone: str, fast_path: bool) -> DataFrame:
    frame = _stage(frame, text=_sanitized_json(value))
    canonical = _canonical_message()
    takes_fast_path = sf.coalesce(_col("text").rlike(canonical), sf.lit(False)) if fast_path else sf.lit(False)
    frame = _stage(frame, fast=takes_fast_path)
    fast = _col("fast")
    # One regex pass rewrites the message to its four values joined by \x01 (no value holds it).
    joined = "\x01".join(f"${group}" for group in range(1, len(_FIELD_KEYS) + 1))
    frame = _stage(frame, guard=fast, fast_values=sf.split(sf.regexp_replace(_col("text"), canonical, joined), "\x01"))
    frame = _stage(frame, guard=fast, **{
        f"fast_{key}": _col("fast_values")[index] for index, key in enumerate(_FIELD_KEYS.values())
    })
    frame = _full_parse(frame, value)
    # Merge: the fast path's values where it applied, the full parser's elsewhere.
    fast_kinds = {"panel": STRING, "power": NUMBER, "status": NUMBER, "time": STRING}
    frame = _stage(
        frame,
        json_ok=fast | _col("full_json_ok"),
        **{f"{key}_kind": sf.when(fast, sf.lit(kind)).otherwise(_col(f"full_{key}_kind"))
           for key, kind in fast_kinds.items()},
        panel=sf.when(fast, _col("fast_panel")).otherwise(_col("full_panel")),
        power=sf.when(fast, _col("fast_power").try_cast("double")).otherwise(_col("full_power")),
        status=sf.when(fast, _col("fast_status").try_cast("double")).otherwise(_col("full_status")),
        time_stripped=sf.when(fast, _col("fast_time")).otherwise(_col("full_time_stripped")),
    )
    return _timestamp_utc(frame, _col("time_stripped"), source_zone)


def _full_parse(frame: DataFrame, value: Column) -> DataFrame:
    """The general path (`full_*` columns), evaluated only for rows the fast path did not take."""
    slow = ~_col("fast")
    frame = _stage(frame, guard=slow, full_doc=sf.try_parse_json(_col("text")))
    frame = _stage(frame, guard=slow, full_json_ok=_is_one_json_object(value, _col("text"), _col("full_doc")))

    # One pass over the document for the four fields, then each field's JSON type and text.
    fields_type = "struct<" + ", ".join(f"`{name.replace('`', '``')}`: variant" for name in _FIELD_KEYS) + ">"
    frame = _stage(frame, guard=slow, full_fields=sf.try_variant_get(_col("full_doc"), "$", fields_type))
    typed = {}
    for name, key in _FIELD_KEYS.items():
        field = _col("full_fields")[name]
        typed[f"{key}_type"] = sf.schema_of_variant(field)
        typed[f"{key}_text"] = sf.try_variant_get(field, "$", "string")
    frame = _stage(frame, guard=slow, **typed)
    frame = _stage(frame, guard=slow, **{f"full_{key}_kind": _field_kind(_col(f"{key}_type"), _col(f"{key}_text"))
                                         for key in _FIELD_KEYS.values()})

    # A number's own token, as Jackson reads it: digits for an integer, the double's text for a
    # float. (The variant's text is no good here: it turns 1.0 and -0.0 into the DECIMAL 1 and 0.)
    tokens_schema = StructType([StructField(name, StringType()) for name in _FIELD_KEYS])
    frame = _stage(frame, guard=slow, tokens=sf.from_json(_col("text"), tokens_schema))
    for name, key in _FIELD_KEYS.items():
        token = sf.regexp_replace(_col("tokens")[name], '^"|"$', "")  # Jackson quotes Infinity
        frame = _stage(frame, guard=slow & (_col(f"full_{key}_kind") == NUMBER), **{f"{key}_token": token})

    unicode_digits, ascii_digits = _unicode_decimal_digits()
    frame = _stage(
        frame,
        guard=slow,
        panel_stripped=sf.when(_col("full_panel_kind") == STRING, _python_strip(_col("panel_text"))),
        **{
            f"{key}_ascii": sf.when(_col(f"full_{key}_kind") == STRING,
                                    sf.translate(_python_strip(_col(f"{key}_text")), unicode_digits, ascii_digits))
            for key in ("power", "status")
        },
        full_time_stripped=sf.when(_col("full_time_kind") == STRING, _python_strip(_col("time_text"))),
    )
    frame = _stage(
        frame,
        guard=slow,
        full_power=_python_number(_col("full_power_kind"), _col("power_token"), _col("power_ascii")),
        full_status=_python_number(_col("full_status_kind"), _col("status_token"), _col("status_ascii")),
        panel_float=_col("panel_token").rlike(r"[.E]|^-?[A-Za-z]"),  # a float, or Infinity (1e400)
    )
    frame = _python_float_repr(frame, _col("panel_token"))
    kind = _col("full_panel_kind")
    return _stage(
        frame,
        guard=slow,
        full_panel=(
            sf.when(kind == STRING, _col("panel_stripped"))
            .when((kind == NUMBER) & _col("panel_float"), _col("repr"))
            .when(kind == NUMBER, _col("panel_token"))
            # The literal itself ("NaN", "Infinity", "-Infinity") after the sentinel.
            .when(kind == NON_FINITE, sf.substring(_col("panel_text"), len(_SENTINEL_VALUE) + 1, 16))
        ),
    )


def _python_float_repr(frame: DataFrame, java_double: Column) -> DataFrame:
    """Add `_p_repr`: Python's repr(float) from Java's Double.toString ("1.0E16" -> "1e+16")."""
    frame = _stage(
        frame,
        repr_sign=sf.regexp_extract(java_double, _JAVA_DOUBLE, 1),
        repr_whole=sf.regexp_extract(java_double, _JAVA_DOUBLE, 2),
        repr_all=sf.concat(sf.regexp_extract(java_double, _JAVA_DOUBLE, 2),
                           sf.regexp_extract(java_double, _JAVA_DOUBLE, 3)),
        repr_exponent=sf.coalesce(sf.regexp_extract(java_double, _JAVA_DOUBLE, 4).try_cast("int"), sf.lit(0)),
        repr_java=java_double,
    )
    significant = sf.regexp_replace(_col("repr_all"), "^0+", "")
    frame = _stage(
        frame,
        repr_digits=sf.regexp_replace(significant, "0+$", ""),
        # Decimal exponent of the first significant digit: value = d.ddd x 10^point.
        repr_point=sf.length(_col("repr_whole")) - 1 - (sf.length(_col("repr_all")) - sf.length(significant))
        + _col("repr_exponent"),
    )
    digits, point = _col("repr_digits"), _col("repr_point")
    fixed_positive = sf.concat(
        sf.rpad(digits, point + 1, "0"), sf.lit("."),
        sf.coalesce(sf.nullif(sf.substring(digits, point + 2, 400), sf.lit("")), sf.lit("0")),
    )
    fixed_negative = sf.concat(sf.lit("0."), sf.repeat(sf.lit("0"), -point - 1), digits)
    scientific = sf.concat(
        sf.substring(digits, 1, 1),
        sf.when(sf.length(digits) > 1, sf.concat(sf.lit("."), sf.substring(digits, 2, 400))).otherwise(sf.lit("")),
        sf.lit("e"), sf.when(point < 0, sf.lit("-")).otherwise(sf.lit("+")),
        sf.lpad(sf.abs(point).cast("string"), 2, "0"),
    )
    # Positional for 1e-4 <= |x| < 1e16, scientific otherwise: Python's repr ('r' format).
    body = (
        sf.when(sf.length(digits) == 0, sf.lit("0.0"))
        .when((point >= 0) & (point < 16), fixed_positive)
        .when((point >= -4) & (point < 0), fixed_negative)
        .otherwise(scientific)
    )
    unquoted = sf.regexp_replace(_col("repr_java"), '^"|"$', "")  # from_json quotes Infinity/NaN
    python_repr = sf.when(_col("repr_java").rlike(_JAVA_DOUBLE), sf.concat(_col("repr_sign"), body))
    return _stage(frame, repr=python_repr.otherwise(unquoted))


def _timestamp_utc(frame: DataFrame, text: Column, source_zone: str) -> DataFrame:
    """Add `_p_time`: contracts.parse_timestamp as a UTC timestamp truncated to ms, null if invalid."""

    def part(start: int, length: int) -> Column:  # fixed positions, once the shape matched
        return sf.substring(text, start, length).try_cast("int")

    fraction = sf.regexp_extract(text, contracts.TIMESTAMP_SHAPE, 1)  # ".123456789" or ""
    frame = _stage(
        frame,
        time_shape_ok=text.rlike(contracts.TIMESTAMP_SHAPE),
        time_year=part(1, 4), time_month=part(6, 2), time_day=part(9, 2),
        time_hour=part(12, 2), time_minute=part(15, 2), time_second=part(18, 2),
        # Python keeps 6 fraction digits (then truncates to ms); Spark takes micros too.
        time_seconds=sf.concat(sf.substring(text, 18, 2), sf.lit("."),
                               sf.rpad(sf.substring(fraction, 2, 6), 6, "0")).try_cast("decimal(16,6)"),
        time_zone=sf.regexp_extract(text, contracts.ZONED_TIMESTAMP, 1),
    )
    zone = _col("time_zone")
    frame = _stage(
        frame,
        # try_make_timestamp raises (not null) for year 0 and wraps second 60: both guarded here.
        time_wall=sf.when(
            _col("time_shape_ok") & (_col("time_year") >= 1) & (_col("time_second") <= 59),
            sf.try_make_timestamp(sf.greatest(_col("time_year"), sf.lit(1)), _col("time_month"), _col("time_day"),
                                  _col("time_hour"), _col("time_minute"), _col("time_seconds")),
        ),
        time_offset_minutes=sf.when(zone == "Z", sf.lit(0)).otherwise(
            sf.when(sf.substring(zone, 1, 1) == "-", sf.lit(-1)).otherwise(sf.lit(1))
            * (sf.substring(zone, 2, 2).try_cast("int") * 60 + sf.substring(zone, -2, 2).try_cast("int"))
        ),
    )
    offset = _col("time_offset_minutes")
    zoned = sf.when(
        sf.abs(offset) < 24 * 60,  # Python: offsets strictly between -24 h and +24 h
        sf.timestamp_micros(sf.unix_micros(_col("time_wall")) - offset.try_cast("long") * 60_000_000),
    )
    # Naive: Java's and zoneinfo's rules agree (fold=0 picks the earlier offset; gaps move forward).
    naive = sf.to_utc_timestamp(_col("time_wall"), source_zone)
    frame = _stage(frame, time_moment=sf.date_trunc("millisecond", sf.when(zone == "", naive).otherwise(zoned)))
    # Python overflows (OverflowError) outside years 1-9999; here that is an invalid time.
    return _stage(frame, time=sf.when(sf.year(_col("time_moment")).between(1, 9999), _col("time_moment")))


def _matches_whole(text: Column, pattern: str) -> Column:
    """Python's `re.fullmatch`: Java's `$` (like Python's) also matches before a final line break."""
    return text.rlike(pattern) & (sf.regexp_extract(text, pattern, 0) == text)


def _reject_reason() -> Column:
    """contracts.parse_reading's checks, in its order: the first failing rule names the reason."""
    power, status = _col("power"), _col("status")
    finite_power = ~sf.isnan(power) & (sf.abs(power) < float("inf"))
    valid_statuses = [float(code) for code in contracts.VALID_STATUSES]
    panel = _col("panel")

    def reason(member: RejectReason) -> Column:
        return sf.lit(member.value)

    return (
        sf.when(~_col("json_ok"), reason(RejectReason.INVALID_JSON))
        .when(_col("panel_kind") == MISSING, reason(RejectReason.MISSING_PANEL_ID))
        .when(panel.isNull() | ~_matches_whole(panel, contracts.PANEL_ID_PATTERN),
              reason(RejectReason.INVALID_PANEL_ID))
        .when(_col("power_kind") == MISSING, reason(RejectReason.MISSING_POWER))
        .when(power.isNull() | ~finite_power, reason(RejectReason.INVALID_POWER))
        .when(_col("status_kind") == MISSING, reason(RejectReason.MISSING_STATUS))
        .when(status.isNull() | ~status.isin(valid_statuses), reason(RejectReason.INVALID_STATUS))
        .when(_col("time_kind") == MISSING, reason(RejectReason.MISSING_TIME))
        .when((_col("time_kind") != STRING) | _col("time").isNull(), reason(RejectReason.INVALID_TIME))
    )


def configure_session(spark: SparkSession) -> None:
    """Apply the session settings the expressions depend on (idempotent)."""
    for key, setting in SESSION_CONF.items():
        spark.conf.set(key, setting)


def parse_records(records: DataFrame, source_zone: str = "UTC", value_column: str = "value", *,
                  fast_path: bool = True) -> DataFrame:
    """`records` (a binary Kafka `value` and any other columns) plus the contract's four fields and
    `reject_reason`: null for a valid reading, else the `RejectReason` value; fields are null then.

    `source_zone` is the zone naive timestamps are read in (`settings.source_timezone`).
    `fast_path=False` sends every row through the general parser (the tests check both agree).
    """
    original = records.columns
    frame = _parse_fields(records, sf.col(value_column), source_zone, fast_path)
    frame = _stage(frame, reason=_reject_reason())
    valid = _col("reason").isNull()
    return frame.select(
        *original,
        sf.when(valid, _col("panel")).alias(PANEL_ID),
        sf.when(valid, _col("power")).alias(POWER),
        sf.when(valid, _col("status").try_cast("tinyint")).alias(STATUS),
        sf.when(valid, _col("time")).alias(TIME),
        _col("reason").alias(REJECT_REASON),
    )


def valid_readings(parsed: DataFrame) -> DataFrame:
    return parsed.where(sf.col(REJECT_REASON).isNull())


def rejected_records(parsed: DataFrame) -> DataFrame:
    return parsed.where(sf.col(REJECT_REASON).isNotNull())
