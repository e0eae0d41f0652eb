"""``format`` values as regular expressions over the decoded string (full match).

Each pattern accepts only strings that are valid in the format (calendar-valid dates, octets
0-255, ...), sometimes fewer than the format's RFC allows (no leap seconds, no quoted email
local parts): a model can always write a valid value, and nothing invalid gets through.
"""

from __future__ import annotations

_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
DATE = (
    rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    rf"|02-(?:0[1-9]|1[0-9]|2[0-8]))|{_LEAP_YEAR}-02-29)"
)
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIME = rf"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?{_OFFSET}"
DATE_TIME = rf"{DATE}[Tt]{TIME}"
# RFC 3339 appendix A: each unit may only be followed by the next smaller one
_DUR_TIME = r"T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
_DUR_DATE = r"(?:[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?|[0-9]+M(?:[0-9]+D)?|[0-9]+D)"
DURATION = rf"P(?:[0-9]+W|{_DUR_DATE}(?:{_DUR_TIME})?|{_DUR_TIME})"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{IPV4})"
IPV6 = (
    "(?:"
    + "|".join(
        [
            rf"(?:{_H16}:){{6}}{_LS32}",
            rf"::(?:{_H16}:){{5}}{_LS32}",
            rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
            rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
            rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
        ]
    )
    + ")"
)
# LDH labels; "--" in the 3rd and 4th characters (reserved, e.g. punycode A-labels, which a
# regular language cannot validate) is refused
_AN = "[A-Za-z0-9]"
_LABEL = rf"{_AN}(?:[A-Za-z0-9-]{{0,2}}{_AN}|[A-Za-z0-9-](?:{_AN}[A-Za-z0-9-]|-{_AN})[A-Za-z0-9-]{{0,58}}{_AN})?"
HOSTNAME = rf"{_LABEL}(?:\.{_LABEL})*"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
EMAIL = rf"{_ATOM}(?:\.{_ATOM})*@{HOSTNAME}"
UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# RFC 3986, collected
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = "%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
_IP_LITERAL = rf"\[(?:{IPV6}|[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+)\]"
_AUTHORITY = rf"(?:{_USERINFO}@)?(?:{_IP_LITERAL}|{_REG_NAME})(?::[0-9]*)?"
_SEGMENT = rf"{_PCHAR}*"
_PATH_ABEMPTY = rf"(?:/{_SEGMENT})*"
_PATH_ABSOLUTE = rf"/(?:{_PCHAR}+{_PATH_ABEMPTY})?"
_PATH_ROOTLESS = rf"{_PCHAR}+{_PATH_ABEMPTY}"
_PATH_NOSCHEME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}@]|{_PCT})+{_PATH_ABEMPTY}"
_TAIL = rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
URI = rf"[A-Za-z][A-Za-z0-9+.\-]*:(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_ROOTLESS})?{_TAIL}"
URI_REFERENCE = rf"(?:{URI}|(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_NOSCHEME})?{_TAIL})"
# RFC 6570 (with erratum 6937: an apostrophe is a literal); ucschar and iprivate literals
_UCS_RANGES = (
    [(0xA0, 0xD7FF), (0xE000, 0xFDCF), (0xFDF0, 0xFFEF)]
    + [(plane << 16, (plane << 16) | 0xFFFD) for plane in range(1, 14)]
    + [(0xE1000, 0xEFFFD), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]
)
# one private-use character stands for all of them (it is one of them): a class of ~1M code
# points written out is slow to parse (interegular lists every one; ~3.5 s)
_UCS = "\ue000"
WIDE_CLASSES = ((_UCS, tuple(_UCS_RANGES)),)
_VARCHAR = rf"(?:[A-Za-z0-9_]|{_PCT})"
_VARSPEC = rf"{_VARCHAR}(?:\.?{_VARCHAR})*(?::[1-9][0-9]{{0,3}}|\*)?"
URI_TEMPLATE = rf"(?:[!#$&-;=?-\[\]_a-z~]|{_UCS}|{_PCT}|\{{[+#./;?&=,!@|]?{_VARSPEC}(?:,{_VARSPEC})*\}})*"
JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"
RELATIVE_JSON_POINTER = rf"(?:0|[1-9][0-9]*)(?:#|{JSON_POINTER})"

# ECMA-262 regular expressions, as a regular subset that Python's ``re`` (jsonschema's check)
# and ECMA-262 both accept: groups nest at most three deep; no backreferences, lookbehinds,
# named groups or flags; a lone ``{ } ]`` is refused, as are ranges other than within
# lowercase, uppercase or digits, and ``{n,m}`` other than a single digit n <= m or m >= 10.
_RX_LITERAL = r"[^\\^$.|?*+()\[\]{}]"
_RX_ESCAPE = r"\\[\\.^$|?*+()\[\]{}/\-dDwWsSntrfv]"
_RX_ANCHOR = r"(?:[$^]|\\[bB])"
_RX_RANGE = "|".join(f"{a}-[{a}-{z}]" for lo, z in (("a", "z"), ("A", "Z"), ("0", "9")) for a in map(chr, range(ord(lo), ord(z) + 1)))
_RX_CLASS_ITEM = rf"(?:{_RX_RANGE}|[^\\\]\[\-^]|\\[\\\]\[\-^.dDwWsSntrfv/])"
_RX_CLASS = rf"\[\^?-?{_RX_CLASS_ITEM}+-?\]"
_RX_COUNT = "|".join([r"[0-9]{1,3}", r"[0-9]{1,3},", r"[0-9],[1-9][0-9]{1,2}"] + [f"{d},[{d}-9]" for d in range(10)])
_RX_QUANTIFIER = rf"(?:[*+?]|\{{(?:{_RX_COUNT})\}})\??"


def _regex_syntax(depth: int) -> str:
    """Alternatives of sequences (empty ones too) with groups nested at most ``depth`` deep."""
    atom = rf"{_RX_LITERAL}|{_RX_ESCAPE}|\.|{_RX_CLASS}"
    if depth:  # a group, non-capturing group or lookahead
        atom += rf"|\((?:\?[:=!])?{_regex_syntax(depth - 1)}\)"
    return rf"(?:(?:{atom})(?:{_RX_QUANTIFIER})?|{_RX_ANCHOR}|\|)*"


REGEX = _regex_syntax(3)

FORMATS: dict[str, str] = {
    "date": DATE,
    "time": TIME,
    "date-time": DATE_TIME,
    "duration": DURATION,
    "ipv4": IPV4,
    "ipv6": IPV6,
    "hostname": HOSTNAME,
    "email": EMAIL,
    "uuid": UUID,
    "uri": URI,
    "uri-reference": URI_REFERENCE,
    "uri-template": URI_TEMPLATE,
    "json-pointer": JSON_POINTER,
    "relative-json-pointer": RELATIVE_JSON_POINTER,
    "regex": REGEX,
}
# formats a length cap applies to (hostname: 253 characters in all)
MAX_LENGTH = {"hostname": 253, "email": 320}
# formats the specification defines that structgen does not enforce (an error, not a silent pass)
UNSUPPORTED = {"idn-email", "idn-hostname", "iri", "iri-reference"}
