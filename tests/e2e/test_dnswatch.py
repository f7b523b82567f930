"""
The DNS drift watch (keys/dnswatch.h): the daemon compares each hosted
domain's published SPF, DKIM and DMARC records with what `postern keys
dns` prints, every dkim_check_interval (1 second here), against a real
DNS server (dnsmasq on a loopback port, restarted with other records
while the daemon runs; the daemon's `resolver` points at it).

For SPF, DKIM and DMARC each: changed and removed records turn the gauge
postern_dns_record_ok{domain,record} to 0 with one warning that says
what is wrong, restored ones turn it back to 1 with one info line; a
record that stays bad is not reported again each interval, nor after a
reload. A record bad at the first check is reported once; good ones are
not. An SPF record that authorizes more than ours, or a DMARC policy the
admin tightened, is no drift. A DNS server that refuses (REFUSED), or no
server at all (the queries fail), is a temporary failure, not a drift: the
gauge keeps its value and nothing is logged. A retiring selector is
watched as long as the daemon knows it (until `keys remove`).
"""
import os
import signal
import time

import pytest

from conftest import run_postern
from helpers import (DNSMASQ, Dnsmasq, free_udp_port, plain_records,
                     plant_retiring, wait_until)
from test_metrics import HAVE_PARSER, scrape, with_metrics

DOMAIN = "example.test"
DMARC = f"_dmarc.{DOMAIN}"
R1 = f"r1._domainkey.{DOMAIN}"
E1 = f"e1._domainkey.{DOMAIN}"
WARN = f"dns: {DOMAIN}: "

pytestmark = [
    pytest.mark.skipif(not os.access(DNSMASQ, os.X_OK),
                       reason=f"{DNSMASQ} missing (apt-get install "
                              "dnsmasq-base)"),
    pytest.mark.skipif(not HAVE_PARSER,
                       reason="python3-prometheus-client missing"),
]


class Watch:
    """The daemon, its DNS server, its records and its metrics port."""

    def __init__(self, d, server, port):
        self.d, self.server, self.port = d, server, port
        self.records = plain_records(d)
        assert set(self.records) == {R1, E1, DOMAIN, DMARC}, self.records

    def serve(self, **changes):
        """Restart dnsmasq with the records, changed by changes
        ({name: value, or None to remove}; names as keyword-safe keys:
        spf, dmarc, r1, e1)."""
        names = {"spf": DOMAIN, "dmarc": DMARC, "r1": R1, "e1": E1}
        recs = dict(self.records)
        for key, value in changes.items():
            if value is None:
                del recs[names[key]]
            else:
                recs[names[key]] = value
        self.server.start(recs)

    def gauges(self):
        m = scrape(self.port)
        return {dict(k[1])["record"]: v for k, v in m.samples.items()
                if k[0] == "postern_dns_record_ok" and
                dict(k[1]).get("domain") == DOMAIN}

    def wait_gauges(self, want, what):
        got = {}

        def cond():
            nonlocal got
            got = self.gauges()
            return got == want
        wait_until(cond, f"{what}: gauges {want} (last: {got})", self.d)

    def lines(self, text):
        """Log lines of the watch that contain text."""
        return [line for line in self.d.log().splitlines()
                if WARN in line and text in line]

    def wait_line(self, text, count=1):
        wait_until(lambda: len(self.lines(text)) >= count,
                   f"{count} log line(s) with {text!r}", self.d)
        assert len(self.lines(text)) == count, self.lines(text)

    def settle(self, seconds=3):
        """Let a few checks (1 s apart) run."""
        time.sleep(seconds)
        assert self.d.alive(), self.d.describe()


@pytest.fixture
def watch(postern_factory, workdir):
    dns_port = free_udp_port()
    port, extra = with_metrics(f'resolver = "127.0.0.1@{dns_port}";\n'
                               'dkim_check_interval = "1s";')
    d = postern_factory(start=False, extra=extra)
    server = Dnsmasq(dns_port, workdir)
    w = Watch(d, server, port)
    yield w
    server.stop()


ALL_OK = {"spf": 1, "dkim": 1, "dmarc": 1}


def test_first_check_reports_bad_records_only(watch):
    w = watch
    w.serve(dmarc=None)
    w.d.start()
    w.wait_gauges({"spf": 1, "dkim": 1, "dmarc": 0}, "DMARC missing")
    w.wait_line(f"DMARC record at {DMARC} is wrong: not published "
                "(NXDOMAIN); `postern keys dns example.test` prints the "
                "record to publish")
    assert "warning dns:" in w.lines("DMARC record")[0]
    w.settle()
    # reported once, good records not at all
    assert len(w.lines("")) == 1, w.lines("")
    w.serve()
    w.wait_gauges(ALL_OK, "DMARC published")
    w.wait_line(f"DMARC record at {DMARC} matches again")


def test_spf_changed_removed_restored(watch):
    w = watch
    ours = w.records[DOMAIN].split()[1]            # a:relay.example.test
    w.serve()
    w.d.start()
    w.wait_gauges(ALL_OK, "all published")
    w.settle(2)
    assert w.lines("") == []

    # an edit that lost our mechanism
    w.serve(spf="v=spf1 mx -all")
    w.wait_gauges({"spf": 0, "dkim": 1, "dmarc": 1}, "SPF changed")
    w.wait_line(f"SPF record at {DOMAIN} drifted: does not authorize "
                f"{ours} (published: \"v=spf1 mx -all\"); receivers fail "
                "SPF on the mail relayed from here; `postern keys dns "
                f"{DOMAIN}` prints the record to publish: "
                f"{w.records[DOMAIN]}")
    w.settle()
    assert len(w.lines("SPF record")) == 1, w.lines("SPF record")

    # more than ours, a softfail: no drift
    w.serve(spf=f"v=spf1 mx {ours} include:other.example ~all")
    w.wait_gauges(ALL_OK, "SPF restored with more")
    w.wait_line(f"SPF record at {DOMAIN} matches again")

    # two SPF records, then none
    w.server.start({**w.records, DOMAIN: w.records[DOMAIN]},
                   extra=[f"--txt-record={DOMAIN},v=spf1 mx -all"])
    w.wait_gauges({"spf": 0, "dkim": 1, "dmarc": 1}, "two SPF records")
    w.wait_line("drifted: 2 v=spf1 records (receivers treat that as an "
                "error: merge them into one)")
    w.serve(spf=None)
    w.wait_line(f"SPF record at {DOMAIN} drifted: ", 3)
    assert w.gauges()["spf"] == 0
    w.serve()
    w.wait_gauges(ALL_OK, "SPF restored")
    w.wait_line(f"SPF record at {DOMAIN} matches again", 2)


def test_dkim_changed_removed_restored(watch):
    w = watch
    w.serve()
    w.d.start()
    w.wait_gauges(ALL_OK, "all published")

    # r1's key replaced by another one
    v = w.records[R1]
    i = v.index("p=") + 40
    other = v[:i] + ("A" if v[i] != "A" else "B") + v[i + 1:]
    w.serve(r1=other)
    w.wait_gauges({"spf": 1, "dkim": 0, "dmarc": 1}, "r1 changed")
    w.wait_line(f"DKIM record of active selector r1 at {R1} drifted: a "
                "different key published (published: \"")
    assert "receivers fail DKIM on the mail signed with it" in \
        w.lines("selector r1")[0]

    # then e1 removed as well: news, though the gauge is 0 already
    w.serve(r1=other, e1=None)
    w.wait_line(f"DKIM record of active selector e1 at {E1} drifted: not "
                "published (NXDOMAIN)")
    w.settle()
    assert w.gauges()["dkim"] == 0
    assert len(w.lines("selector r1")) == 1, w.lines("selector r1")
    assert len(w.lines("selector e1")) == 1, w.lines("selector e1")

    # r1 back alone: still 0 (e1 is missing); then e1 too
    w.serve(e1=None)
    w.wait_line(f"DKIM record of active selector r1 at {R1} matches again")
    w.settle(2)
    assert w.gauges()["dkim"] == 0
    w.serve()
    w.wait_gauges(ALL_OK, "DKIM restored")
    w.wait_line(f"DKIM record of active selector e1 at {E1} matches again")


def test_dmarc_changed_removed_restored(watch):
    w = watch
    w.serve()
    w.d.start()
    w.wait_gauges(ALL_OK, "all published")

    # a policy the admin tightened is no drift
    w.serve(dmarc="v=DMARC1; p=reject; rua=mailto:dmarc@example.test")
    w.settle()
    assert w.gauges() == ALL_OK
    assert w.lines("") == []

    w.serve(dmarc="v=DMARC1; rua=mailto:dmarc@example.test")
    w.wait_gauges({"spf": 1, "dkim": 1, "dmarc": 0}, "DMARC broken")
    w.wait_line(f"DMARC record at {DMARC} drifted: no valid p= policy "
                "(none, quarantine or reject) (published: \"v=DMARC1; "
                "rua=mailto:dmarc@example.test\")")
    w.serve()
    w.wait_gauges(ALL_OK, "DMARC restored")
    w.wait_line(f"DMARC record at {DMARC} matches again")

    w.serve(dmarc=None)
    w.wait_gauges({"spf": 1, "dkim": 1, "dmarc": 0}, "DMARC removed")
    w.wait_line(f"DMARC record at {DMARC} drifted: not published "
                "(NXDOMAIN)")
    w.serve()
    w.wait_gauges(ALL_OK, "DMARC restored")
    w.wait_line(f"DMARC record at {DMARC} matches again", 2)


def test_temporary_failure_is_not_drift(watch):
    w = watch
    w.serve(spf="v=spf1 mx -all")
    w.d.start()
    w.wait_gauges({"spf": 0, "dkim": 1, "dmarc": 1}, "SPF bad at start")
    w.wait_line(f"SPF record at {DOMAIN} is wrong")
    before = w.lines("")

    # the server refuses every query: nothing changes
    w.server.start({}, local=False)
    w.settle()
    assert w.gauges() == {"spf": 0, "dkim": 1, "dmarc": 1}
    assert w.lines("") == before

    # no server at all: the queries fail; nothing changes either
    w.server.stop()
    w.settle(4)
    assert w.gauges() == {"spf": 0, "dkim": 1, "dmarc": 1}
    assert w.lines("") == before

    # back with the same records: still bad, not reported again; a
    # reload keeps what the watch knew
    w.serve(spf="v=spf1 mx -all")
    w.settle()
    w.d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded " in w.d.log(), "the reload", w.d)
    w.settle()
    assert w.gauges() == {"spf": 0, "dkim": 1, "dmarc": 1}
    assert w.lines("") == before

    w.serve()
    w.wait_gauges(ALL_OK, "SPF fixed")
    w.wait_line(f"SPF record at {DOMAIN} matches again")


def test_retiring_selector_watched_until_removed(watch):
    """A retiring selector (its key file still there) is watched too; once
    `keys remove` forgets it, it is no longer, and the gauge is 1 again
    without a word."""
    w = watch
    plant_retiring(w.d, DOMAIN)
    R0 = f"r0._domainkey.{DOMAIN}"
    w.records = plain_records(w.d)
    assert R0 in w.records
    w.server.start(w.records)
    w.d.start()
    w.wait_gauges(ALL_OK, "all published, r0 too")

    w.server.start({k: v for k, v in w.records.items() if k != R0})
    w.wait_gauges({"spf": 1, "dkim": 0, "dmarc": 1}, "r0 removed from DNS")
    w.wait_line(f"DKIM record of retiring selector r0 at {R0} drifted: not "
                "published (NXDOMAIN); mail signed with it that is still "
                "in transit fails DKIM (once none is, `postern keys "
                "remove` it)")

    r = run_postern(["keys", "remove", DOMAIN, "r0"], config=w.d.conf)
    assert r.returncode == 0, r.stderr
    w.wait_gauges(ALL_OK, "r0 forgotten")
    w.settle(2)
    assert len(w.lines("")) == 1, w.lines("")
