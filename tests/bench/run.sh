#!/bin/sh
# run.sh - benchmark this build of Postern with the load harness that lives
# outside the repository (by default ../shared/bench, see its README.md):
# prepare a scratch instance, start it, run the workloads, stop it.
#
# Usage, from anywhere:
#   tests/bench/run.sh [W1 W2 W3]     (default: all three)
#
# Settings, from the environment:
#   BENCH_DIR    the harness (run-bench.sh, smtpload.c, summarize.py);
#                default ../shared/bench beside this repository. Missing:
#                this script says so and exits 2.
#   PORT         the STARTTLS listener, 127.0.0.1 only; default 15871.
#                Must be free.
#   SIGN         "both" (default: rsa-sha256 and ed25519-sha256, what
#                `postern keys generate` makes) or "rsa" (rsa-sha256 only,
#                what the harness's Postfix + OpenDKIM peer signs with).
#   REPS         repetitions of each workload (default 1).
#   LABEL        name of the runs in runs.tsv; default postern-$SIGN.
#   WORK_DIR     scratch directory (config, keys, queue, log, results);
#                default a new /tmp/postern-bench.XXXXXX, kept afterwards.
#   RESULTS_DIR  where the harness appends runs.tsv and raw/; default
#                WORK_DIR/results. Give the same one to the peer's runs
#                (run-bench.sh postfix) to compare them in one table.
#
# The instance (tests/bench/instance.sh, shared with the other scripts
# here): hostname relay.example.test, a self-signed certificate, SASL user
# "bench" with password "benchpass" (what smtpload sends) allowed to send
# as loadgen@example.test, DKIM keys for example.test, no rate limits,
# relay.mode "smarthost" to the harness's sink on 127.0.0.1:2525 without
# TLS (and a route for the sink's recipient domain sink.test, so no DNS
# lookup happens at RCPT). Started as root it runs as "nobody"; started
# as another user it stays that user. Nothing but loopback is used.
#
# The other measurements the performance issue asks for are scripts
# beside this one, each with its own scratch instance (tests/bench/README):
#   sessions.sh  10,000 authenticated TLS sessions held open (make bench-sessions)
#   bigmsg.sh    one 25 MB message, RSS before/peak/after (make bench-bigmsg)
#   backlog.sh   200,000 queued with the next hop down (make bench-backlog)
#
# The daemon is stopped (SIGTERM, by its pid) when the script ends, however
# it ends. Exit status: the harness's (0: every run ok), 1 setup failed,
# 2 the harness is missing.
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)

BENCH_DIR=${BENCH_DIR:-$REPO/../shared/bench}
PORT=${PORT:-15871}
SIGN=${SIGN:-both}
REPS=${REPS:-1}
LABEL=${LABEL:-postern-$SIGN}
WORKLOADS=${*:-W1 W2 W3}

BENCH_NAME=bench
. "$REPO/tests/bench/instance.sh"

# The harness is not part of this repository: never assume it is there.
if [ ! -f "$BENCH_DIR/run-bench.sh" ] || [ ! -f "$BENCH_DIR/smtpload.c" ]; then
	say "benchmark harness not found in $BENCH_DIR"
	say "(it is not part of Postern; set BENCH_DIR to its directory)"
	exit 2
fi
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

instance_check
command -v smtp-sink >/dev/null ||
    die "smtp-sink is missing (Debian package postfix; the harness's peer-postfix.sh setup installs it)"
instance_dirs
RESULTS_DIR=${RESULTS_DIR:-$WORK_DIR/results}

# The harness reads (and builds smtpload in) its own directory: work on a
# copy, so a read-only harness directory is fine.
say "copying the harness to $WORK_DIR/harness"
rm -rf "$WORK_DIR/harness"
mkdir -p "$WORK_DIR/harness"
cp -R "$BENCH_DIR/." "$WORK_DIR/harness/"
make -s -C "$WORK_DIR/harness" smtpload >/dev/null ||
    die "cannot build smtpload in $WORK_DIR/harness"

instance_setup

# Start the daemon; stop it by its pid whatever happens next.
trap 'instance_stop' EXIT
trap 'exit 130' INT TERM HUP
instance_start
say "postern pid $PID on 127.0.0.1:$PORT (signing: $SIGN), log $LOG"

rc=0
# WORKLOADS is a list of words: split on purpose
# shellcheck disable=SC2086
TARGET_PORT=$PORT TARGET_HOST=127.0.0.1 SERVER_PIDS=$PID LABEL=$LABEL \
    REPS=$REPS RESULTS_DIR=$RESULTS_DIR \
    "$WORK_DIR/harness/run-bench.sh" custom $WORKLOADS || rc=$?

instance_stop
say "postern stopped"
# What the disk was asked for, from the daemon's last words ("queue
# closed: commits=N updates=N removes=N fsyncs=N (files N, queue/ N) ...").
line=$(grep 'queue closed:' "$LOG" | tail -n 1 || true)
if [ -n "$line" ]; then
	commits=$(echo "$line" | sed -n 's/.*commits=\([0-9]*\).*/\1/p')
	fsyncs=$(echo "$line" | sed -n 's/.* fsyncs=\([0-9]*\).*/\1/p')
	say "disk: ${line#*queue closed: }"
	if [ "${commits:-0}" -gt 0 ]; then
		say "disk: $(awk -v f="$fsyncs" -v c="$commits" \
		    'BEGIN { printf "%.2f", f / c }') fsyncs per message" \
		    "(accepting and delivering it, all workloads together)"
	fi
fi
if [ -s "$RESULTS_DIR/runs.tsv" ] && command -v python3 >/dev/null; then
	python3 "$WORK_DIR/harness/summarize.py" "$RESULTS_DIR/runs.tsv" ||
	    true
fi
say "results: $RESULTS_DIR/runs.tsv (raw outputs in $RESULTS_DIR/raw/)"
say "daemon log: $LOG; scratch instance: $WORK_DIR"
[ $rc = 0 ] || say "some runs failed (harness exit $rc): see the lines above"
exit $rc
