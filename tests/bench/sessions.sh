#!/bin/sh
# sessions.sh - how much memory N simultaneous authenticated TLS sessions
# cost this build of Postern, and how fast a new client is served while
# they are held (issue 13: 10,000 sessions measured at 176 MB RSS, a new
# client served in 5 ms; DESIGN.md: 10,000 sessions in under 1 GiB).
#
# Usage, from anywhere:
#   tests/bench/sessions.sh            (make bench-sessions)
#
# Settings, from the environment:
#   N            sessions to hold (default 10000)
#   CONC         sessions being set up at once (default 200)
#   PORT         the STARTTLS listener, 127.0.0.1 only; default 28587
#   SINK_PORT    the next hop (tests/bench/sink.py); default 28525
#   SIGN, WORK_DIR   as for run.sh (tests/bench/instance.sh)
#
# What it does: a scratch instance (instance.sh) with its connection
# limits raised for the test (limits.connections N+100,
# connections_per_ip 100000, command_timeout 1h; the file descriptor
# limit of this shell, which the daemon and the clients inherit, raised
# to N+1024), a sink as its next hop. Then:
#   1. the daemon's memory (VmRSS, VmHWM) with no client, and a new
#      client's latency (sessions.py probe: connect -> banner, and one
#      whole message over STARTTLS + AUTH with smtplib, median/max of 5);
#   2. sessions.py hold opens N sessions (EHLO, STARTTLS, EHLO, AUTH
#      PLAIN bench/benchpass) and keeps them open;
#   3. with them held: the daemon's VmRSS and VmHWM (and its child
#      processes', if any), RSS per session, the established connections
#      the kernel counts on PORT (ss), and the new client's latency again
#      (median/max of 10);
#   4. the sessions are closed, and the daemon's RSS read once more.
# A final summary prints the figures. Every process it started (daemon,
# sink, holder) is stopped by its pid however the script ends.
# Exit status: 0 when all N sessions were held and the probes worked,
# 1 otherwise.
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)

N=${N:-10000}
CONC=${CONC:-200}
PORT=${PORT:-28587}
SINK_PORT=${SINK_PORT:-28525}
PY=/usr/bin/python3
BENCH_NAME=sessions
. "$REPO/tests/bench/instance.sh"

case $N in ''|*[!0-9]*) die "N must be a number" ;; esac
case $CONC in ''|*[!0-9]*) die "CONC must be a number" ;; esac
[ "$N" -le 99900 ] || die "N is at most 99900 (limits.connections is at most 100000)"
$PY -c 'import aiosmtpd' 2>/dev/null ||
    die "python3-aiosmtpd is missing (apt-get install python3-aiosmtpd)"

# The daemon holds one descriptor per session, the client too (separate
# processes, each with this limit); leave room for listeners, the queue,
# the log and the sink.
want=$((N + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
	ulimit -n "$want" 2>/dev/null ||
	    die "cannot raise the open files limit to $want (hard limit: $(ulimit -Hn)); lower N or raise it"
fi

instance_check
instance_dirs
CONNECTIONS=$((N + 100))
CONNECTIONS_PER_IP=100000
COMMAND_TIMEOUT=1h
instance_setup

HOLD_PID=""
cleanup() {
	stop_pid "$HOLD_PID"
	HOLD_PID=""
	instance_stop
	stop_pid "$SINK_PID"
	SINK_PID=""
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM HUP

sink_start
instance_start
say "postern pid $PID on 127.0.0.1:$PORT, fd limit $(ulimit -n), log $LOG"

# mem_kb FIELD - the daemon's VmRSS or VmHWM, in kB
mem_kb() { proc_kb "$PID" "$1"; }
probe() {
	$PY tests/bench/sessions.py probe --port "$PORT" --count "$1" \
	    --cafile "$WORK_DIR/tls/cert.pem" | sed -n 's/^PROBE //p'
}

rss0=$(mem_kb VmRSS)
hwm0=$(mem_kb VmHWM)
probe0=$(probe 5) || die "the probe failed with no sessions held"
[ -n "$probe0" ] || die "the probe printed nothing"
say "no sessions: VmRSS $(mb "$rss0") MB, VmHWM $(mb "$hwm0") MB; new client: $probe0"

say "opening $N sessions ($CONC at a time)"
rm -f "$WORK_DIR/held"
$PY tests/bench/sessions.py hold --port "$PORT" --n "$N" --conc "$CONC" \
    --cafile "$WORK_DIR/tls/cert.pem" --ready "$WORK_DIR/held" \
    >"$WORK_DIR/hold.out" 2>"$WORK_DIR/hold.log" &
HOLD_PID=$!
# Setting up a session takes a few ms: allow 1 s per 20, at least 2 min.
limit=$((N / 20)); [ "$limit" -ge 120 ] || limit=120
n=0
until [ -s "$WORK_DIR/held" ]; do
	kill -0 "$HOLD_PID" 2>/dev/null ||
	    die "the client stopped: $(tail -n 5 "$WORK_DIR/hold.log")"
	[ $n -lt $((limit * 10)) ] || die "$N sessions not open after $limit s; see $WORK_DIR/hold.log"
	sleep 0.1
	n=$((n + 1))
done
held_line=$(cat "$WORK_DIR/held")
secs=$(echo "$held_line" | sed -n 's/.* seconds=\([0-9.]*\).*/\1/p')
rate=$(echo "$held_line" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')
held=$(echo "$held_line" | sed -n 's/.* held=\([0-9]*\).*/\1/p')
failed=$(echo "$held_line" | sed -n 's/.* failed=\([0-9]*\).*/\1/p')
say "${held_line#HELD }"
[ "$failed" = 0 ] || sed -n 's/^sessions: \([0-9]* failed\)/\1/p' "$WORK_DIR/hold.log" >&2
sleep 2		# let the last sessions settle (buffers released when idle)

rss1=$(mem_kb VmRSS)
hwm1=$(mem_kb VmHWM)
kids1=$(proc_children_kb "$PID")
nkids=$(proc_children "$PID" | wc -l)
client_kb=$(proc_kb "$HOLD_PID" VmRSS || echo 0)
# estab - connections to PORT the kernel counts as established (ss)
estab() {
	if command -v ss >/dev/null; then
		ss -Htn state established "( sport = :$PORT )" | wc -l
	else
		echo "? (no ss)"
	fi
}
estab=$(estab)
probe1=$(probe 10) || die "the probe failed with $held sessions held"
[ -n "$probe1" ] || die "the probe printed nothing"
still=$(estab)

stop_pid "$HOLD_PID"
HOLD_PID=""
sleep 2
rss2=$(mem_kb VmRSS)

per=$(awk -v a="$rss0" -v b="$rss1" -v n="$held" \
    'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "?" }')
echo
echo "=== sessions.sh summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, signing: $SIGN)"
echo "sessions held:        $held of $N (failed $failed), set up in $secs s ($rate/s)"
echo "                      established on :$PORT by the kernel's count: $estab (after the probe: $still)"
echo "daemon, none held:    VmRSS $(mb "$rss0") MB, VmHWM $(mb "$hwm0") MB"
echo "daemon, all held:     VmRSS $(mb "$rss1") MB, VmHWM $(mb "$hwm1") MB," \
    "children: $nkids ($(mb "$kids1") MB)"
echo "per session:          $per KB of daemon RSS ((held - none) / sessions)"
echo "daemon, after close:  VmRSS $(mb "$rss2") MB"
echo "client (sessions.py): VmRSS $(mb "$client_kb") MB (asyncio keeps a 256 KiB buffer per TLS connection)"
echo "new client, none held: $probe0 (median/max, ms)"
echo "new client, all held:  $probe1 (median/max, ms)"
echo "issue 13's figure to keep: 176 MB RSS at 10,000 sessions, a new client served in 5 ms"
echo "scratch instance: $WORK_DIR (log $LOG)"
[ "$held" = "$N" ]
