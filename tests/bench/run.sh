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
# The instance: hostname relay.example.test, a self-signed certificate,
# SASL user "bench" with password "benchpass" (what smtpload sends) allowed
# to send as loadgen@example.test, DKIM keys for example.test, no rate
# limits, relay.mode "smarthost" to the harness's sink on 127.0.0.1:2525
# without TLS (and a route for the sink's recipient domain sink.test, so no
# DNS lookup happens at RCPT). Started as root it runs as "nobody" (the
# daemon never runs its loop as root); started as another user it stays
# that user. Nothing but loopback is used.
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

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

# The harness is not part of this repository: never assume it is there.
if [ ! -f "$BENCH_DIR/run-bench.sh" ] || [ ! -f "$BENCH_DIR/smtpload.c" ]; then
	say "benchmark harness not found in $BENCH_DIR"
	say "(it is not part of Postern; set BENCH_DIR to its directory)"
	exit 2
fi
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

case $SIGN in
both|rsa) ;;
*) die "SIGN must be both or rsa, not $SIGN" ;;
esac
case $PORT in
''|*[!0-9]*) die "PORT must be a number" ;;
esac
[ -x ./postern ] || die "./postern is missing: run make first"
command -v openssl >/dev/null || die "openssl is missing"
command -v smtp-sink >/dev/null ||
    die "smtp-sink is missing (Debian package postfix; the harness's peer-postfix.sh setup installs it)"
# (bash's /dev/tcp, as the harness itself uses: it needs bash anyway)
if bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' sh "$PORT" 2>/dev/null; then
	die "127.0.0.1:$PORT is in use: choose another PORT"
fi

# Scratch directory. The daemon (nobody, when we are root) must be able to
# reach its state directory, so the top is 0755 and the state 0700.
if [ -z "${WORK_DIR:-}" ]; then
	WORK_DIR=$(mktemp -d /tmp/postern-bench.XXXXXX)
fi
mkdir -p "$WORK_DIR"
WORK_DIR=$(cd "$WORK_DIR" && pwd)
chmod 755 "$WORK_DIR"
RESULTS_DIR=${RESULTS_DIR:-$WORK_DIR/results}
CONF=$WORK_DIR/postern.conf
STATE=$WORK_DIR/state
LOG=$WORK_DIR/postern.log
[ ! -e "$STATE/queue" ] || die "$WORK_DIR already holds an instance: give a new WORK_DIR"

if [ "$(id -u)" = 0 ]; then
	RUN_USER=nobody
	USER_LINE='user = "nobody";'
else
	RUN_USER=$(id -un)
	USER_LINE='# started by a user: the daemon stays that user'
fi

# The harness reads (and builds smtpload in) its own directory: work on a
# copy, so a read-only harness directory is fine.
say "copying the harness to $WORK_DIR/harness"
rm -rf "$WORK_DIR/harness"
mkdir -p "$WORK_DIR/harness"
cp -R "$BENCH_DIR/." "$WORK_DIR/harness/"
make -s -C "$WORK_DIR/harness" smtpload >/dev/null ||
    die "cannot build smtpload in $WORK_DIR/harness"

# write_conf DKIM_LIST - the configuration, with DKIM_LIST as the keys of
# example.test (empty before the keys exist).
write_conf() {
	if [ -n "$1" ]; then
		dkim_line="dkim = ( $1 );"
	else
		dkim_line=""
	fi
	cat >"$CONF" <<EOF
# Scratch instance for the benchmark harness, made by tests/bench/run.sh.
hostname  = "relay.example.test";
state_dir = "$STATE";
$USER_LINE

listen = ( { address = "127.0.0.1"; port = $PORT; tls = "starttls"; } );
tls  = { certificate = "$WORK_DIR/tls/cert.pem"; key = "$WORK_DIR/tls/key.pem"; };
auth = { mechanisms = [ "PLAIN", "LOGIN" ]; sasldb = "sasldb2"; };

domains = (
	{ name = "example.test";
	  $dkim_line
	}
);

# smtpload logs in as "bench" and sends as loadgen@example.test
senders = (
	{ login = "bench"; addresses = [ "loadgen@example.test" ];
	  messages_per_hour = 0; messages_per_day = 0;
	  recipients_per_hour = 0; recipients_per_day = 0; }
);

# No rate limit may refuse the load (0: none). 127.0.0.0/8 is exempt
# from the per-address limits by default.
limits = {
	user_messages_per_hour = 0; user_messages_per_day = 0;
	user_recipients_per_hour = 0; user_recipients_per_day = 0;
	recipient_messages_per_hour = 0;
	connection_rate_per_ip = 0;
	connections_per_ip = 1000;
};

# Everything to the harness's sink, plain SMTP on loopback; the peer
# (Postfix) uses 20 connections to it, so do we.
relay = {
	mode = "smarthost";
	smarthost = { host = "127.0.0.1"; port = 2525; tls = "none"; };
	routes = ( { domain = "sink.test"; next_hop = "[127.0.0.1]:2525";
	             tls = "none"; } );
	connections_per_host = 20;
	retry = { first = "1s"; max = "10s"; expire = "1h"; };
};
EOF
}

say "preparing the instance in $WORK_DIR (runs as $RUN_USER)"
umask 022
mkdir -p "$WORK_DIR/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
    -subj "/CN=relay.example.test" \
    -addext "subjectAltName=DNS:relay.example.test,IP:127.0.0.1" \
    -keyout "$WORK_DIR/tls/key.pem" -out "$WORK_DIR/tls/cert.pem" \
    2>/dev/null || die "openssl could not make a certificate"
chmod 600 "$WORK_DIR/tls/key.pem"

# The state directory and its subdirectories belong to the daemon's user
# (INSTALL, "State directory").
mkdir -p "$STATE/tmp" "$STATE/queue" "$STATE/corrupt"
chmod 700 "$STATE" "$STATE/tmp" "$STATE/queue" "$STATE/corrupt"
if [ "$RUN_USER" = nobody ]; then
	chown -R nobody:nogroup "$STATE" 2>/dev/null ||
	    chown -R nobody "$STATE"
fi

write_conf ""
# `keys generate` prints the dkim = ( ... ); line to put in the config.
keys_out=$(./postern keys generate example.test -c "$CONF") ||
    die "postern keys generate failed"
dkim=$(printf '%s\n' "$keys_out" | sed -n 's/^dkim = ( \(.*\) );$/\1/p')
[ -n "$dkim" ] || die "no dkim line in the output of postern keys generate"
if [ "$SIGN" = rsa ]; then
	# keep the rsa-sha256 entry only
	dkim=$(printf '%s\n' "$dkim" |
	    sed -n 's/.*\({ selector = "[^"]*"; algorithm = "rsa-sha256"; }\).*/\1/p')
	[ -n "$dkim" ] || die "no rsa-sha256 key in: $keys_out"
fi
write_conf "$dkim"

printf 'benchpass\n' | ./postern users add bench -c "$CONF" >/dev/null ||
    die "postern users add failed"
./postern check-config -c "$CONF" >/dev/null ||
    die "the generated configuration is refused: $(./postern check-config -c "$CONF" 2>&1)"

# Start the daemon; stop it by its pid whatever happens next.
PID=""
stop_daemon() {
	[ -n "$PID" ] || return 0
	if kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null || true
		n=0
		while kill -0 "$PID" 2>/dev/null && [ $n -lt 100 ]; do
			sleep 0.1
			n=$((n + 1))
		done
		if kill -0 "$PID" 2>/dev/null; then
			say "postern (pid $PID) still running after 10 s: SIGKILL"
			kill -KILL "$PID" 2>/dev/null || true
		fi
	fi
	wait "$PID" 2>/dev/null || true
	PID=""
}
trap 'stop_daemon' EXIT
trap 'exit 130' INT TERM HUP

./postern serve -c "$CONF" >"$LOG" 2>&1 &
PID=$!
n=0
until grep -q ' ready ' "$LOG" 2>/dev/null; do
	kill -0 "$PID" 2>/dev/null ||
	    die "postern did not start; its log ($LOG):
$(cat "$LOG")"
	[ $n -lt 100 ] || die "postern not ready after 10 s; see $LOG"
	sleep 0.1
	n=$((n + 1))
done
say "postern pid $PID on 127.0.0.1:$PORT (signing: $SIGN), log $LOG"

rc=0
# WORKLOADS is a list of words: split on purpose
# shellcheck disable=SC2086
TARGET_PORT=$PORT TARGET_HOST=127.0.0.1 SERVER_PIDS=$PID LABEL=$LABEL \
    REPS=$REPS RESULTS_DIR=$RESULTS_DIR \
    "$WORK_DIR/harness/run-bench.sh" custom $WORKLOADS || rc=$?

stop_daemon
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
