"""The search parameters: ``filter`` (a useful subset of the Solr syntax Freesound accepts) and
``query`` (terms scored over tag, description, name, username and pack)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from easy_oww.demo.freesound_standin.corpus import tokens


class FilterError(ValueError):
    pass


FILTER_KINDS = {
    "id": "num", "duration": "num", "bitdepth": "num", "bitrate": "num", "samplerate": "num",
    "filesize": "num", "channels": "num", "num_downloads": "num", "avg_rating": "num",
    "num_ratings": "num", "num_comments": "num", "comments": "num",
    "created": "date",
    "username": "exact", "md5": "exact", "type": "exact", "pack": "exact",
    "grouping_pack": "exact", "category": "exact", "subcategory": "exact",
    "category_code": "exact",
    "license": "license", "tag": "tag",
    "original_filename": "text", "description": "text", "pack_tokenized": "text",
    "is_geotagged": "bool", "is_explicit": "bool", "is_remix": "bool", "was_remixed": "bool",
}


def _field_value(s: dict, field: str) -> Any:
    if field == "tag":
        return s["tags_lower"]
    if field == "license":
        return s["license_name"]
    if field == "comments":
        return s["num_comments"]
    if field == "pack":
        return s["pack_name"]
    if field == "grouping_pack":
        return f"{s['pack_id']}_{s['pack_name']}" if s["pack_id"] else None
    if field == "is_geotagged":
        return s["geotag"] is not None
    if field in ("is_remix", "was_remixed"):
        return False
    if field == "original_filename":
        return s["tok"]["name"]
    if field == "description":
        return s["tok"]["description"]
    if field == "pack_tokenized":
        return s["tok"]["pack"]
    return s[field]


_DATE_MATH = re.compile(r"([+-])(\d+)(YEAR|MONTH|DAY|HOUR|MINUTE|SECOND)S?")


def _parse_date(text: str) -> datetime:
    t = text.strip()
    if t.startswith("NOW"):
        base = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
        rest = t[3:].split("/")[0]
        pos = 0
        for m in _DATE_MATH.finditer(rest):
            if m.start() != pos:
                raise FilterError(f"bad date math {text!r}")
            pos = m.end()
            n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
            unit = m.group(3)
            days = {"YEAR": 365 * n, "MONTH": 30 * n, "DAY": n}.get(unit, 0)
            secs = {"HOUR": 3600 * n, "MINUTE": 60 * n, "SECOND": n}.get(unit, 0)
            base += timedelta(days=days, seconds=secs)
        if pos != len(rest):
            raise FilterError(f"bad date math {text!r}")
        return base
    t = t.split("/")[0]
    if t.endswith("Z"):
        t = t[:-1]
    try:
        return datetime.fromisoformat(t).replace(tzinfo=None)
    except ValueError as exc:
        raise FilterError(f"bad date {text!r}") from exc


def _license_key(name: str) -> str:
    return " ".join(name.lower().split())


class _FilterParser:
    """field:value clauses; whitespace/AND = and, OR, NOT/-/!, parentheses, ranges, groups."""

    _FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.ids: list[int] = []

    def parse(self) -> Callable[[dict], bool]:
        node = self._expr(self._unary)
        self._ws()
        if self.i < len(self.s):
            raise FilterError(f"unexpected {self.s[self.i:]!r}")
        return node

    # -- lexing helpers
    def _ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def _kw(self, *words: str) -> bool:
        self._ws()
        for w in words:
            if self.s.startswith(w, self.i):
                end = self.i + len(w)
                if w in ("&&", "||") or end == len(self.s) or self.s[end] in " \t\n()":
                    self.i = end
                    return True
        return False

    def _at_end_of_group(self) -> bool:
        self._ws()
        return self.i >= len(self.s) or self.s[self.i] == ")"

    # -- grammar; `unit` is the operand parser (a clause, or a value inside field:(...))
    def _expr(self, unit, default_or: bool = False) -> Callable[[dict], bool]:
        alts = [self._and(unit, default_or)]
        while not self._at_end_of_group():
            if self._kw("OR", "||") or default_or:
                alts.append(self._and(unit, default_or))
            else:
                break
        if len(alts) == 1:
            return alts[0]
        return lambda s: any(p(s) for p in alts)

    def _and(self, unit, default_or: bool) -> Callable[[dict], bool]:
        parts = [unit()]
        while not self._at_end_of_group():
            save = self.i
            if self._kw("OR", "||"):
                self.i = save
                break
            if self._kw("AND", "&&"):
                parts.append(unit())
                continue
            if default_or:
                break
            parts.append(unit())
        if len(parts) == 1:
            return parts[0]
        return lambda s: all(p(s) for p in parts)

    def _negatable(self, inner) -> Callable[[dict], bool]:
        self._ws()
        negate = self._kw("NOT")
        if not negate and self.i < len(self.s) and self.s[self.i] in "-!":
            self.i += 1
            negate = True
        if negate:
            p = self._negatable(inner)
            return lambda s: not p(s)
        if self.i < len(self.s) and self.s[self.i] == "+":
            self.i += 1
        return inner()

    def _unary(self) -> Callable[[dict], bool]:
        return self._negatable(self._clause)

    def _clause(self) -> Callable[[dict], bool]:
        self._ws()
        if self.i >= len(self.s):
            raise FilterError("filter ends early")
        if self.s[self.i] == "(":
            self.i += 1
            p = self._expr(self._unary)
            self._expect(")")
            return p
        if self.s[self.i] == "{":
            raise FilterError("local parameters such as {!geofilt} are not supported")
        m = self._FIELD.match(self.s, self.i)
        if not m:
            raise FilterError(f"expected field:value at {self.s[self.i:]!r}")
        field = m.group(1)
        if field not in FILTER_KINDS:
            raise FilterError(f"undefined field {field}")
        self.i = m.end()
        return self._value(field)

    def _expect(self, ch: str) -> None:
        self._ws()
        if self.i >= len(self.s) or self.s[self.i] != ch:
            raise FilterError(f"expected {ch!r}")
        self.i += 1

    def _value(self, field: str) -> Callable[[dict], bool]:
        if self.i >= len(self.s):
            raise FilterError(f"no value for {field}")
        c = self.s[self.i]
        if c == "(":
            self.i += 1
            p = self._expr(lambda: self._negatable(lambda: self._group_value(field)),
                           default_or=True)
            self._expect(")")
            return p
        if c in "[{":
            return self._range(field)
        return self._term(field, self._word())

    def _group_value(self, field: str) -> Callable[[dict], bool]:
        self._ws()
        return self._value(field)

    def _word(self) -> tuple[str, bool]:
        if self.s[self.i] == '"':
            j = self.i + 1
            buf = []
            while j < len(self.s) and self.s[j] != '"':
                if self.s[j] == "\\" and j + 1 < len(self.s):
                    j += 1
                buf.append(self.s[j])
                j += 1
            if j >= len(self.s):
                raise FilterError("unterminated quote")
            self.i = j + 1
            return "".join(buf), True
        j = self.i
        buf = []
        while j < len(self.s) and not self.s[j].isspace() and self.s[j] not in "()":
            if self.s[j] == "\\" and j + 1 < len(self.s):
                j += 1
            buf.append(self.s[j])
            j += 1
        if not buf:
            raise FilterError(f"empty value at {self.s[self.i:]!r}")
        self.i = j
        return "".join(buf), False

    def _range(self, field: str) -> Callable[[dict], bool]:
        lo_incl = self.s[self.i] == "["
        close = self.s.find("]", self.i)
        close2 = self.s.find("}", self.i)
        ends = [e for e in (close, close2) if e != -1]
        if not ends:
            raise FilterError("unterminated range")
        end = min(ends)
        hi_incl = self.s[end] == "]"
        body = self.s[self.i + 1:end]
        self.i = end + 1
        parts = re.split(r"\s+TO\s+", body.strip())
        if len(parts) != 2:
            raise FilterError("a range needs 'a TO b' (TO in upper case)")
        kind = FILTER_KINDS[field]
        if kind not in ("num", "date", "exact"):
            raise FilterError(f"{field} does not take a range")
        conv: Callable[[str], Any]
        if kind == "num":
            conv = float
        elif kind == "date":
            conv = _parse_date
        else:
            conv = str
        try:
            lo = None if parts[0].strip() in ("*", "") else conv(parts[0].strip().strip('"'))
            hi = None if parts[1].strip() in ("*", "") else conv(parts[1].strip().strip('"'))
        except ValueError as exc:
            raise FilterError(f"bad range for {field}: {body!r}") from exc

        def pred(s: dict) -> bool:
            v = _field_value(s, field)
            if v is None:
                return False
            if lo is not None and (v < lo if lo_incl else v <= lo):
                return False
            if hi is not None and (v > hi if hi_incl else v >= hi):
                return False
            return True

        return pred

    def _term(self, field: str, word: tuple[str, bool]) -> Callable[[dict], bool]:
        value, quoted = word
        kind = FILTER_KINDS[field]
        if value == "*" and not quoted:
            return lambda s: _field_value(s, field) not in (None, False, set())
        if kind == "num":
            try:
                num = float(value)
            except ValueError as exc:
                raise FilterError(f"{field} needs a number, got {value!r}") from exc
            if field == "id" and num.is_integer():
                self.ids.append(int(num))
            return lambda s: _field_value(s, field) == num
        if kind == "date":
            d = _parse_date(value)
            return lambda s: s["created"] == d
        if kind == "exact":
            if value.endswith("*") and not quoted:
                prefix = value[:-1]
                return lambda s: str(_field_value(s, field) or "").startswith(prefix)
            return lambda s: _field_value(s, field) == value
        if kind == "license":
            key = _license_key(value)
            return lambda s: _license_key(s["license_name"]) == key
        if kind == "tag":
            low = value.lower()
            return lambda s: low in s["tags_lower"]
        if kind == "text":
            toks = tokens(value)
            return lambda s: bool(toks) and toks <= _field_value(s, field)
        if kind == "bool":
            want = value.lower() in ("1", "true", "t", "yes")
            return lambda s: bool(_field_value(s, field)) == want
        raise FilterError(f"cannot filter on {field}")  # pragma: no cover


def compile_filter(text: str) -> tuple[Callable[[dict], bool], list[int]]:
    """Compile a filter; returns the predicate and the ids named in ``id:`` clauses."""
    p = _FilterParser(text)
    return p.parse(), p.ids


_ID_IN_FILTER = re.compile(r"\bid:\s*(?:\(([^)]*)\)|\"?(\d+)\"?)")


def ids_in_filter(text: str) -> list[int]:
    """The ids a filter names, even when it does not parse."""
    try:
        return compile_filter(text)[1]
    except FilterError:
        out = []
        for m in _ID_IN_FILTER.finditer(text):
            out += [int(x) for x in re.findall(r"\d+", m.group(1) or m.group(2) or "")]
        return out


# ----------------------------------------------------------------------------------------------
# Text query
# ----------------------------------------------------------------------------------------------

QUERY_WEIGHTS = (("id", 4.0), ("tag", 4.0), ("description", 3.0), ("name", 2.0),
                 ("username", 2.0), ("pack", 2.0))


def compile_query(query: str) -> Callable[[dict], float | None] | None:
    """None for the empty query (everything); else a scorer returning None for no match."""
    q = query.strip()
    if not q.replace('"', "").replace("'", "").strip():
        return None
    required: list[set[str]] = []
    prohibited: list[set[str]] = []
    for m in re.finditer(r'([+-]?)"([^"]*)"|([+-]?)(\S+)', q):
        sign = m.group(1) or m.group(3) or ""
        toks = tokens(m.group(2) if m.group(2) is not None else m.group(4))
        if not toks:
            continue
        (prohibited if sign == "-" else required).append(toks)

    def score(s: dict) -> float | None:
        tok = s["tok"]
        total = 0.0
        for term in required:
            best = 0.0
            for field, w in QUERY_WEIGHTS:
                if term <= tok[field]:
                    best += w
            if not best:
                return None
            total += best
        for term in prohibited:
            if any(term <= tok[f] for f, _ in QUERY_WEIGHTS):
                return None
        return total

    return score
