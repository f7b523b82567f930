"""
The Grafana dashboard (contrib/grafana/postern-dashboard.json) queries
only what the daemon exports: the real daemon with its metrics endpoint
on (as in test_metrics.py), a message sent so every counter has been
through a delivery, one scrape with plain urllib; then every PromQL
expression of every panel (and of the templating variables) is reduced to
the metric names it selects, each of which must be a family of the
scrape (`# TYPE` lines), a `_bucket`, `_sum` or `_count` of a histogram
family, and each label matcher with a fixed value must name a series the
daemon renders. Also: the file is JSON, every panel has a datasource and
at least one query, and panel ids are unique.

The extraction is unit-tested too (test_extract_*), and so is the check
itself against a copy of the dashboard with a made-up metric added: it
must fail naming that metric.
"""
import copy
import json
import os
import re
import urllib.request

import pytest

from conftest import ROOT
from helpers import make_message, submit_smtplib, wait_until
from test_metrics import ALICE, with_metrics

DASHBOARD = os.path.join(ROOT, "contrib", "grafana", "postern-dashboard.json")

# PromQL words that are not metric names: aggregations, functions,
# operators and modifiers (functions are also recognised by their "(").
PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "count_values", "stddev", "stdvar",
    "topk", "bottomk", "quantile", "group", "by", "without", "on",
    "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "rate", "irate", "increase", "delta", "idelta", "deriv",
    "histogram_quantile", "le", "abs", "ceil", "floor", "round", "clamp",
    "clamp_min", "clamp_max", "vector", "scalar", "time", "timestamp",
    "label_replace", "label_join", "label_values", "sort", "sort_desc",
    "absent", "changes", "resets", "predict_linear", "avg_over_time",
    "max_over_time", "min_over_time", "sum_over_time", "count_over_time",
    "last_over_time", "inf", "nan",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels Prometheus adds at scrape time, never in the exposition.
TARGET_LABELS = {"instance", "job"}

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
SELECTOR = re.compile(r'([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}')
MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!=|!~|=)\s*'
                     r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')')
GROUPING = re.compile(r'\b(by|without|on|ignoring|group_left|group_right)'
                      r'\s*\([^)]*\)')
IDENT = re.compile(r'(?<![\w$.:])([A-Za-z_:][\w:]*)(\s*\()?')


def metric_names(expr):
    """The metric names an expression selects (a set)."""
    e = SELECTOR.sub(lambda m: (m.group(1) or "") + " ", expr)
    # Grafana's label_values(metric, label): the label is no metric
    e = re.sub(r'\b(label_values\s*\([^,()]*),\s*\w+\s*\)', r'\1)', e)
    e = STRING.sub(" ", e)                    # label_values' strings, etc.
    e = re.sub(r'\[[^\]]*\]', " ", e)         # range [5m], [$__rate_interval]
    e = GROUPING.sub(" ", e)                  # by (le), on (instance) ...
    e = re.sub(r'\$\{?\w+\}?', " ", e)        # $__interval, ${var}
    names = set()
    for m in IDENT.finditer(e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def label_matchers(expr):
    """(metric, label, value) for each `label="value"` matcher with a
    fixed value on a named metric."""
    out = []
    for sel in SELECTOR.finditer(expr):
        name = sel.group(1)
        if not name:
            continue
        for lab, op, val in MATCHER.findall(sel.group(2)):
            val = val[1:-1]
            if op == "=" and "$" not in val and lab not in TARGET_LABELS:
                out.append((name, lab, val))
    return out


def dashboard_exprs(dash):
    """(where, PromQL) for every panel target and query variable."""
    out = []
    for p in all_panels(dash):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel {p.get('id')} {p.get('title')!r} "
                            f"target {t.get('refId')}", t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if q:
                out.append((f"variable {v.get('name')}", q))
    return out


def all_panels(dash):
    """Every panel, those inside collapsed rows too."""
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


class Exposition:
    """One scrape: families by `# TYPE`, the sample names, and the label
    pairs seen per sample name."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.samples = {}
        self.values = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(None, 3)
                self.types[name] = typ
            elif line and not line.startswith("#"):
                m = re.match(r'([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)',
                             line)
                assert m, f"unparsable sample line {line!r}"
                found = MATCHER.findall(m.group(2) or "")
                self.samples.setdefault(m.group(1), set()).update(found)
                labels = frozenset((lab, v[1:-1]) for lab, _, v in found)
                self.values[(m.group(1), labels)] = float(m.group(3))

    def get(self, name, **labels):
        return self.values.get((name, frozenset(labels.items())))

    def family_of(self, name):
        """The exported family a queried name belongs to, or None."""
        if name in self.types and self.types[name] != "histogram":
            return name
        for suf in HISTOGRAM_SUFFIXES:
            base = name[:-len(suf)]
            if name.endswith(suf) and self.types.get(base) == "histogram":
                return base
        return None

    def has_label(self, name, label, value):
        return any(lab == label and val[1:-1] == value
                   for lab, _, val in self.samples.get(name, ()))


def check_dashboard(dash, expo):
    """Every problem of the dashboard against one scrape (a list of
    lines, empty when it is fine)."""
    problems = []
    ids = [p.get("id") for p in all_panels(dash)]
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if dup:
        problems.append(f"panel ids used twice: {dup}")
    if None in ids:
        problems.append("a panel has no id")
    for p in all_panels(dash):
        what = f"panel {p.get('id')} {p.get('title')!r}"
        if not p.get("datasource"):
            problems.append(f"{what}: no datasource")
        targets = [t for t in p.get("targets", []) if t.get("expr")]
        if not targets:
            problems.append(f"{what}: no target with an expr")
        for t in p.get("targets", []):
            if not t.get("datasource"):
                problems.append(f"{what} target {t.get('refId')}: "
                                "no datasource")
    exprs = dashboard_exprs(dash)
    if not exprs:
        problems.append("no PromQL expression at all")
    for where, expr in exprs:
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: names no metric: {expr}")
        for name in sorted(names):
            if expo.family_of(name) is None:
                problems.append(f"{where}: unknown metric {name!r} "
                                f"(not exported by the daemon): {expr}")
        for name, label, value in label_matchers(expr):
            if expo.family_of(name) and \
                    not expo.has_label(name, label, value):
                problems.append(f"{where}: no series {name}"
                                f"{{{label}=\"{value}\"}} exported: {expr}")
    return problems


def load_dashboard():
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def test_extract_metric_names():
    assert metric_names(
        'histogram_quantile(0.95, sum by (le) (rate('
        'postern_accept_latency_seconds_bucket{instance=~"$instance"}'
        '[$__rate_interval])))') == {"postern_accept_latency_seconds_bucket"}
    assert metric_names(
        'sum(rate(a_total{x="b_total"}[5m])) / ignoring(reason) '
        'sum(rate(c_seconds_count[1h] offset 1d)) * 60') == \
        {"a_total", "c_seconds_count"}
    assert metric_names(
        "label_values(postern_connections_total, instance)") == \
        {"postern_connections_total"}
    assert metric_names('{__name__="x"}') == set()
    assert label_matchers('rate(m_total{instance=~"$i",limit="a_b"}[1m])') \
        == [("m_total", "limit", "a_b")]


def test_dashboard_json_shape():
    dash = load_dashboard()
    assert dash.get("title") and dash.get("uid")
    assert isinstance(dash.get("schemaVersion"), int)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    # importable: the datasource is a variable the importer chooses
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for p in all_panels(dash):
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]


def scrape_text(port):
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return r.read().decode("utf-8")


@pytest.fixture
def exposition(postern_factory, ssl_ctx):
    """The daemon's scrape after a message went through (directory
    relay): accepted, signed and delivered, so counters and both
    histograms have moved."""
    port, extra = with_metrics('relay = { mode = "directory"; };')
    d = postern_factory(extra=extra)
    submit_smtplib(d, ssl_ctx, make_message(ALICE, ["bob@example.com"],
                                            subject="dashboard"),
                   rcpts=["bob@example.com"])
    wait_until(lambda: Exposition(scrape_text(port)).get(
        "postern_recipients_total", outcome="delivered") == 1,
        "the message to be delivered", d)
    expo = Exposition(scrape_text(port))
    assert expo.get("postern_messages_accepted_total") == 1, expo.text
    assert expo.get("postern_accept_latency_seconds_count") == 1, expo.text
    return expo


def test_every_query_names_an_exported_metric(exposition):
    dash = load_dashboard()
    problems = check_dashboard(dash, exposition)
    assert not problems, "dashboard problems:\n" + "\n".join(problems)
    # and the check saw the histograms and a labelled matcher at all
    used = set().union(*(metric_names(e) for _, e in dashboard_exprs(dash)))
    assert "postern_accept_latency_seconds_bucket" in used
    assert "postern_dkim_signatures_total" in used


def test_check_names_an_unknown_metric(exposition):
    """The check can fail, and says which metric: a copy of the dashboard
    with a made-up metric, a histogram suffix on a counter, a bare
    histogram name, a label value nobody renders, a duplicated id and a
    panel without datasource."""
    dash = copy.deepcopy(load_dashboard())
    p = dash["panels"][-1]
    p["targets"].append(dict(p["targets"][0], refId="Z",
                             expr='sum(rate(postern_bogus_total[5m]))'))
    p["targets"].append(dict(p["targets"][0], refId="Y",
                             expr='rate(postern_auth_total_bucket[5m])'))
    p["targets"].append(dict(p["targets"][0], refId="X",
                             expr='postern_accept_latency_seconds'))
    p["targets"].append(dict(
        p["targets"][0], refId="W",
        expr='postern_recipients_total{outcome="lost"}'))
    q = copy.deepcopy(dash["panels"][0])
    del q["datasource"]
    dash["panels"].append(q)
    problems = "\n".join(check_dashboard(dash, exposition))
    assert "unknown metric 'postern_bogus_total'" in problems, problems
    assert "unknown metric 'postern_auth_total_bucket'" in problems
    assert "unknown metric 'postern_accept_latency_seconds'" in problems
    assert 'no series postern_recipients_total{outcome="lost"}' in problems
    assert f"panel ids used twice: [{q['id']}]" in problems
    assert f"panel {q['id']} {q['title']!r}: no datasource" in problems
