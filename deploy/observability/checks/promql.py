"""Just enough PromQL to see what an expression reads: its vector selectors
(metric name, label matchers, the function applied to it) and the labels it
groups or matches on. promtool checks the syntax; this finds the names, so
that they can be compared with a real scrape and with the metrics contract.

Grafana's variables ($job, ${namespace}, $__rate_interval, ...) are replaced
before parsing (`substitute`).
"""

import re

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<num>(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:(?:ms|s|m|h|d|w|y)(?:[0-9]+(?:ms|s|m|h|d|w|y))*)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],@:])
    """,
    re.X,
)
# Words that are never metric names where they stand.
KEYWORDS = {
    "and", "or", "unless", "atan2", "bool", "offset", "by", "without", "on",
    "ignoring", "group_left", "group_right", "inf", "nan",
}  # fmt: skip
# Modifiers followed by a parenthesised list of label names.
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Functions whose argument must be a counter (a monotonic series).
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
# Names a scrape never holds: Prometheus makes them.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
COUNTER_SUFFIXES = ("_total", "_bucket", "_sum", "_count")

# Grafana's built-in interval variables, as durations PromQL accepts.
GRAFANA_INTERVALS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__interval_ms": "60000",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def variables(text):
    """The Grafana variables a text refers to."""
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(text)}


def substitute(expr, values):
    """`expr` with each Grafana variable replaced: built-in intervals by a
    duration, others by `values[name]` (a dict, "placeholder" for a name it
    lacks) or `values(name)` (a function)."""

    def one(m):
        var = next(g for g in m.groups() if g)
        if var in GRAFANA_INTERVALS:
            return GRAFANA_INTERVALS[var]
        return values(var) if callable(values) else values.get(var, "placeholder")

    return _VARIABLE.sub(one, expr)


class Selector:
    """One vector selector: `name{matchers}` and the function it is passed to."""

    def __init__(self, name, matchers, function):
        self.name = name
        self.matchers = matchers  # [(label, op, value)]
        self.function = function  # innermost enclosing function, or None

    def matcher(self, label):
        return next(((op, v) for lab, op, v in self.matchers if lab == label), None)

    def __repr__(self):
        inner = ",".join(f"{lab}{op}{v!r}" for lab, op, v in self.matchers)
        return f"{self.name}{{{inner}}}"


def tokens(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup not in ("ws", "comment"):
            out.append((m.lastgroup, m.group()))
    return out


def _unquote(s):
    if s[0] == "`":
        return s[1:-1]
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def parse(expr):
    """(selectors, grouping labels) of an expression."""
    toks = tokens(expr)
    selectors, grouping = [], set()
    # Stack of open brackets: ("(", function or None) or ("[", None).
    stack = []
    i = 0

    def function():
        for kind, fn in reversed(stack):
            if kind == "(" and fn is not None:
                return fn
        return None

    def matchers_at(j):
        """Matchers of `{...}` starting at toks[j] == '{'; index after '}'."""
        found, j = [], j + 1
        while toks[j][1] != "}":
            if toks[j][1] == ",":
                j += 1
                continue
            label, op, value = toks[j][1], toks[j + 1][1], toks[j + 2]
            if value[0] != "str":
                raise ValueError(f"matcher {label}{op} takes a string in {expr!r}")
            found.append((label, op, _unquote(value[1])))
            j += 3
        return found, j + 1

    pending = None  # an aggregation whose `(` follows its `by (...)`
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "ident" and text not in KEYWORDS and nxt in ("by", "without"):
            pending = text  # sum by (le) (...)
            i += 1
            continue
        if kind == "ident" and text in LABEL_LISTS and nxt == "(":
            j = i + 2
            while toks[j][1] != ")":
                if toks[j][0] == "ident":
                    grouping.add(toks[j][1])
                j += 1
            i = j + 1
            continue
        if kind == "ident" and nxt == "(" and text not in KEYWORDS:
            stack.append(("(", text))
            i += 2
            continue
        if kind == "ident" and text.lower() not in KEYWORDS:
            matchers = []
            j = i + 1
            if nxt == "{":
                matchers, j = matchers_at(i + 1)
            selectors.append(Selector(text, matchers, function()))
            i = j
            continue
        if text == "{":  # a selector without a name: {__name__=...}
            matchers, i = matchers_at(i)
            name = next((v for lab, op, v in matchers if lab == "__name__" and op == "="), None)
            if name is None:
                raise ValueError(f"a selector without a metric name in {expr!r}")
            selectors.append(Selector(name, matchers, function()))
            continue
        if text == "(":
            stack.append(("(", pending))
            pending = None
        elif text == "[":
            stack.append(("[", None))
        elif text in (")", "]"):
            if not stack:
                raise ValueError(f"unbalanced {text!r} in {expr!r}")
            stack.pop()
        i += 1
    return selectors, grouping


def family(name):
    """The metric family a sample name belongs to (histogram series share
    their family's name without _bucket / _sum / _count)."""
    return re.sub(r"_(bucket|sum|count)$", "", name)


def counter_like(name):
    return name.endswith(COUNTER_SUFFIXES)


def misuse(selector):
    """Why a selector is applied to the wrong kind of function, or None:
    counters (…_total, histogram series) only through rate / irate /
    increase, gauges never through them."""
    if selector.name in SYNTHETIC:
        return None
    if counter_like(selector.name) and selector.function not in COUNTER_FUNCTIONS:
        return f"counter {selector.name} is read by {selector.function or 'nothing'}, not rate/increase"
    if not counter_like(selector.name) and selector.function in COUNTER_FUNCTIONS:
        return f"gauge {selector.name} is read by {selector.function}"
    return None
