"""
The metrics endpoint (`metrics = { address; port; }`): GET /metrics in
the Prometheus text format, read with a real parser (Debian's
python3-prometheus-client), whose counters match exactly what each test
did to the daemon:

- connections, TLS handshakes, AUTH results, messages accepted and
  refused by reason (auth required, sender not owned, size, too many
  recipients, syntax, header, rate limit), limits hit, DKIM signatures by
  algorithm, the acceptance latency histogram, and deliveries in
  directory mode (the queue gauge back to 0);
- AUTH lockouts: failures, the lockout, AUTH refused while locked and the
  connection refused at connect;
- relay.mode mx (dnsmasq and aiosmtpd sinks on loopback, as in
  test_relay_mx.py): one recipient delivered, one refused with 550 and so
  bounced, the DSN sent and delivered, a RCPT refused for a domain that
  does not exist;
- only GET /metrics: 404 for other paths, 405 for other methods; no
  listener without the group.
"""
import time
import urllib.error
import urllib.request

import pytest

from conftest import free_port
from helpers import (SMTP, expect, make_message, submission, submit_smtplib,
                     wait_until)
from test_relay_mx import ALICE, RECORDS, mxnet, submit  # noqa: F401

try:
    from prometheus_client.parser import text_string_to_metric_families
    HAVE_PARSER = True
except ImportError:
    HAVE_PARSER = False

pytestmark = pytest.mark.skipif(
    not HAVE_PARSER, reason="python3-prometheus-client missing")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One scrape: {(sample name, ((label, value), ...)): value}, and the
    families' types."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.types = {}
        for fam in text_string_to_metric_families(text):
            self.types[fam.name] = fam.type
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                assert key not in self.samples, f"duplicate sample {key}"
                self.samples[key] = s.value

    def get(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        assert key in self.samples, f"no sample {key} in:\n{self.text}"
        return self.samples[key]

    def family(self, name, label):
        """{label value: sample value} of a labelled counter family"""
        return {dict(k[1])[label]: v for k, v in self.samples.items()
                if k[0] == name and label in dict(k[1])}

    def diff(self, earlier):
        """What changed since an earlier scrape, for failure messages."""
        return {k: v - earlier.samples.get(k, 0)
                for k, v in self.samples.items()
                if v != earlier.samples.get(k, 0)}


def metrics_url(port, path="/metrics"):
    return f"http://127.0.0.1:{port}{path}"


def scrape(port):
    with urllib.request.urlopen(metrics_url(port), timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == CONTENT_TYPE
        return Metrics(r.read().decode("utf-8"))


def http_status(port, path="/metrics", method="GET", data=None):
    req = urllib.request.Request(metrics_url(port, path), method=method,
                                 data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def wait_scrape(d, port, cond, what, timeout=20):
    """Scrape until cond(metrics) holds; the last scrape."""
    deadline = time.time() + timeout
    while True:
        m = scrape(port)
        if cond(m):
            return m
        assert d.alive(), d.describe()
        assert time.time() < deadline, \
            f"timed out: {what}\n{m.text}\n" + d.log()[-3000:]
        time.sleep(0.05)


def with_metrics(extra=""):
    port = free_port()
    return port, f"{extra}\nmetrics = {{ address = \"127.0.0.1\"; port = {port}; }};"


def idle(m):
    """The daemon's view once the readiness probes of conftest (one
    connection per listener) are done: no session open."""
    return (m.get("postern_sessions") == 0 and
            m.get("postern_connections_total") >= 3)


def assert_counts(m, base, name, label, want):
    """Every series of a labelled counter changed by exactly want's value
    (0 for those not named)."""
    now = m.family(name, label)
    then = base.family(name, label)
    assert set(want) <= set(now), (want, now)
    got = {k: now[k] - then.get(k, 0) for k in now}
    expected = {k: want.get(k, 0) for k in now}
    assert got == expected, f"{name}: {got} != {expected}\n" \
        f"all changes: {m.diff(base)}"


def test_counters_match_what_was_done(postern_factory, ssl_ctx):
    port, extra = with_metrics('relay = { mode = "directory"; };')
    d = postern_factory(extra=extra,
                        limits={"user_messages_per_hour": 3})
    base = wait_scrape(d, port, idle, "the readiness probes to end")
    # conftest's readiness probes: one TCP connection per listener; the
    # implicit TLS one ended in its handshake
    assert base.get("postern_connections_total") == 3
    assert base.get("postern_tls_handshakes_total", result="failure") == 1
    assert base.types["postern_connections"] == "counter"
    assert base.types["postern_sessions"] == "gauge"
    assert base.types["postern_accept_latency_seconds"] == "histogram"
    assert "metrics listen address=127.0.0.1 port=%d" % port in d.log()

    # One session collects refusals of each kind the contract names.
    c = submission(d, ssl_ctx)
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 530, "5.7.0", conn=c)
    c.login(ALICE)
    expect(c.cmd("MAIL FROM:<bob@example.test>"), 553, "5.7.1", conn=c)
    expect(c.cmd(f"MAIL FROM:<{ALICE}> SIZE=99999999"), 552, "5.3.4",
           conn=c)
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, "2.1.0", conn=c)
    for i in range(5):                       # limits.recipients = 5
        expect(c.cmd(f"RCPT TO:<r{i}@example.com>"), 250, conn=c)
    expect(c.cmd("RCPT TO:<r5@example.com>"), 452, "4.5.3", conn=c)
    expect(c.cmd("RCPT TO:<@@>"), 501, conn=c)
    r = c.data(b"To: r0@example.com\r\nSubject: no From\r\n\r\nbody\r\n")
    expect(r, 550, "5.6.0", "exactly one From", conn=c)
    expect(c.cmd("QUIT"), 221, conn=c)
    c.close()

    # A wrong password (AUTH PLAIN once: smtplib would try LOGIN too).
    c = submission(d, ssl_ctx)
    expect(c.auth_plain(ALICE, "not-the-password"), 535, "5.7.8", conn=c)
    expect(c.cmd("QUIT"), 221, conn=c)
    c.close()

    # Three messages, as Trac sends them.
    for i in range(3):
        submit_smtplib(d, ssl_ctx, make_message(ALICE, ["bob@example.com"],
                                                subject=f"metrics {i}"),
                       rcpts=["bob@example.com"])

    # The fourth MAIL of the hour is over limits.user_messages_per_hour.
    c = submission(d, ssl_ctx, login=ALICE)
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 450, "4.7.1", conn=c)
    expect(c.cmd("QUIT"), 221, conn=c)
    c.close()

    m = wait_scrape(
        d, port, lambda m: m.get("postern_sessions") == 0 and
        m.get("postern_queue_messages") == 0 and
        m.get("postern_recipients_total", outcome="delivered") -
        base.get("postern_recipients_total", outcome="delivered") >= 3,
        "every delivery and session to end")

    def delta(name, **labels):
        return m.get(name, **labels) - base.get(name, **labels)

    assert delta("postern_connections_total") == 6
    assert_counts(m, base, "postern_connections_refused_total", "reason",
                  {})
    assert_counts(m, base, "postern_tls_handshakes_total", "result",
                  {"success": 6})
    assert_counts(m, base, "postern_auth_total", "result",
                  {"success": 5, "failure": 1})
    assert delta("postern_messages_accepted_total") == 3
    assert_counts(m, base, "postern_messages_rejected_total", "reason",
                  {"auth_required": 1, "sender_not_owned": 1, "size": 1,
                   "too_many_recipients": 1, "syntax": 1, "header": 1,
                   "rate_limit": 1})
    assert_counts(m, base, "postern_limit_hits_total", "limit",
                  {"user_messages": 1, "message_size": 1, "recipients": 1})
    assert_counts(m, base, "postern_dkim_signatures_total", "algorithm",
                  {"rsa-sha256": 3, "ed25519-sha256": 3})
    assert_counts(m, base, "postern_recipients_total", "outcome",
                  {"delivered": 3})
    assert delta("postern_bounces_sent_total") == 0
    assert m.get("postern_queue_messages") == 0
    assert m.get("postern_queue_oldest_age_seconds") == 0

    # histograms: three acceptances, three deliveries; buckets cumulative
    for h in ("postern_accept_latency_seconds",
              "postern_delivery_latency_seconds"):
        assert m.get(h + "_count") == 3
        assert m.get(h + "_bucket", le="+Inf") == 3
        buckets = sorted(((float(dict(k[1])["le"]), v)
                          for k, v in m.samples.items()
                          if k[0] == h + "_bucket"))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), buckets
        assert m.get(h + "_sum") >= 0
    assert 0 < m.get("postern_accept_latency_seconds_sum") < 30
    assert m.get("postern_accept_latency_seconds_bucket", le="30") == 3


def test_queue_gauges_while_mail_waits(postern_factory, ssl_ctx):
    """In mx mode with a DNS server that refuses everything, accepted
    mail stays queued: the gauges count it and age it."""
    port, extra = with_metrics()
    d = postern_factory(extra=extra)
    wait_scrape(d, port, idle, "the readiness probes to end")
    for i in range(2):
        submit_smtplib(d, ssl_ctx, make_message(ALICE, ["bob@example.com"],
                                                subject=f"waits {i}"),
                       rcpts=["bob@example.com"])
    time.sleep(1.1)
    m = wait_scrape(d, port, lambda m: m.get(
        "postern_recipients_total", outcome="deferred") >= 2,
        "both first attempts to defer")
    assert m.get("postern_queue_messages") == 2
    assert 1 <= m.get("postern_queue_oldest_age_seconds") < 60
    assert m.get("postern_recipients_total", outcome="delivered") == 0
    assert m.get("postern_delivery_latency_seconds_count") == 0


def test_auth_lockout(postern_factory, ssl_ctx):
    """Loopback not exempt: two wrong passwords lock the address out;
    AUTH is then refused (454) and so is the next connection (421)."""
    port, extra = with_metrics()
    d = postern_factory(extra=extra, limits={
        "exempt_networks": "[]", "auth_failure_delay": 0,
        "auth_failures_per_ip": 2})
    base = wait_scrape(d, port, idle, "the readiness probes to end")
    c = submission(d, ssl_ctx)
    expect(c.auth_plain(ALICE, "wrong-1"), 535, "5.7.8", conn=c)
    expect(c.auth_plain(ALICE, "wrong-2"), 535, "5.7.8", conn=c)
    expect(c.auth_plain(ALICE), 454, "4.7.0", conn=c)
    assert c.closed()
    c.close()
    c = SMTP(d.address("submission"), d.port("submission"))
    expect(c.reply(), 421, "4.7.0", "failed authentications", conn=c)
    c.close()
    m = wait_scrape(d, port, lambda m: m.get("postern_sessions") == 0,
                    "the sessions to end")
    assert m.get("postern_connections_total") - \
        base.get("postern_connections_total") == 1
    assert_counts(m, base, "postern_auth_total", "result",
                  {"failure": 2, "locked": 1})
    assert_counts(m, base, "postern_connections_refused_total", "reason",
                  {"auth_lockout": 1})
    assert_counts(m, base, "postern_limit_hits_total", "limit",
                  {"auth_lockout": 1})


def test_delivered_bounced_and_dsn(mxnet, ssl_ctx):
    """relay.mode mx: bob is delivered, reject-me is refused with 550 (a
    bounce), the DSN goes to the sender (routed to a sink) and is
    delivered; a RCPT for a domain that does not exist is refused."""
    make, server, sinks, start_sink = mxnet
    mx = start_sink("127.0.0.2")
    home = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = make('routes = ( { domain = "example.test"; '
             'next_hop = "[127.0.0.4]"; } );')
    port, extra = with_metrics(d.extra)
    d.extra = extra
    d.write_config()
    d.start()
    base = wait_scrape(d, port, idle, "the readiness probes to end")

    c = submission(d, ssl_ctx, login=ALICE)
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, conn=c)
    expect(c.cmd("RCPT TO:<x@nosuch.test>"), 550, "5.1.2", conn=c)
    expect(c.cmd("QUIT"), 221, conn=c)
    c.close()
    submit(d, ssl_ctx, ["bob@mx-a.test", "reject-me@mx-a.test"],
           subject="metrics bounce")
    wait_until(lambda: len(home.got) == 1, "the bounce", d)
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert mx.rcpts() == ["bob@mx-a.test"]
    m = wait_scrape(d, port, lambda m: m.get("postern_queue_messages") == 0
                    and m.get("postern_sessions") == 0,
                    "the scheduler to forget the messages")

    def delta(name, **labels):
        return m.get(name, **labels) - base.get(name, **labels)

    assert delta("postern_messages_accepted_total") == 1
    assert_counts(m, base, "postern_messages_rejected_total", "reason",
                  {"dns_domain": 1})
    # bob, and the DSN to alice; reject-me bounced
    assert_counts(m, base, "postern_recipients_total", "outcome",
                  {"delivered": 2, "bounced": 1})
    assert delta("postern_bounces_sent_total") == 1
    # the message and its DSN, each signed twice
    assert_counts(m, base, "postern_dkim_signatures_total", "algorithm",
                  {"rsa-sha256": 2, "ed25519-sha256": 2})
    assert delta("postern_delivery_latency_seconds_count") == 2
    assert delta("postern_accept_latency_seconds_count") == 1
    assert m.get("postern_queue_oldest_age_seconds") == 0


def test_only_get_metrics(postern_factory):
    port, extra = with_metrics()
    d = postern_factory(extra=extra)
    assert http_status(port, "/")[0] == 404
    assert http_status(port, "/metricsx")[0] == 404
    assert http_status(port, "/metrics/")[0] == 404
    status, headers = http_status(port, method="POST", data=b"x=1")
    assert status == 405
    assert headers.get("Allow") == "GET"
    assert http_status(port, method="PUT", data=b"")[0] == 405
    assert http_status(port, method="HEAD")[0] == 405
    assert http_status(port, "/metrics?x=1")[0] == 200
    # a request too large for the limits is refused, and the daemon
    # goes on serving
    req = urllib.request.Request(metrics_url(port),
                                 headers={"X-Big": "a" * 20000})
    with pytest.raises((urllib.error.HTTPError, ConnectionError,
                        urllib.error.URLError)):
        urllib.request.urlopen(req, timeout=10).read()
    scrape(port)
    assert d.alive()


def test_no_group_no_listener(postern_factory):
    d = postern_factory()
    assert "metrics listen" not in d.log()
