#!/bin/sh
# backlog.sh - a large queue with the next hop down: how fast this build
# of Postern accepts mail meanwhile, what the backlog costs it at start-up,
# in memory and in idle CPU, and how fast it drains once the next hop is
# back (issue 13: 50,000 queued took RSS from 15 MB to 103 MB, idle CPU
# ~1 % of a core, 2.2 s from start to listening; targets: acceptance at
# the W1 rate with the hop down, <= 200 MB RSS at 200,000 queued, a drain
# no slower than the W1 rate).
#
# Usage, from anywhere:
#   tests/bench/backlog.sh             (make bench-backlog)
#   N=5000 RETRY_FIRST=10s RETRY_MAX=1m tests/bench/backlog.sh
#                                      a quick check (about 2 minutes)
#
# Settings, from the environment:
#   N            messages to queue (default 200000). They need disk space
#                in WORK_DIR: about 12 KB each as files of a 4 KiB body
#                take blocks (2.5 GB at 200,000), checked before starting.
#   SIZE         body bytes per message (default 4096, as W1)
#   CONC         client sessions at once (default 20, as W1)
#   IDLE         seconds of the idle CPU measurement (default 30)
#   DRAIN        "no": stop after the idle measurement (step 3 skipped),
#                e.g. with RETRY_FIRST=1h RETRY_MAX=1h, which keeps
#                retries out of steps 1 and 2 but would not let the drain
#                start for an hour; default "yes"
#   RETRY_FIRST, RETRY_MAX   relay.retry.first and .max (default "1m"
#                and "5m"): the scheduler tries the dead hop again on
#                this schedule, and once it is back the drain starts at
#                most RETRY_MAX later (expire is "1d": nothing expires).
#                The scheduler probes a dead hop once per back-off, not
#                each message (relay/SCHED.md); before that change, with
#                10s/1m, acceptance fell from ~600 to ~15 msg/s once
#                25,000 were queued, and N=200000 could not finish.
#   BENCH_DIR    the load harness (smtpload.c), as for run.sh; without
#                it, sessions.py load (Python, slower) sends the load
#   SINK         "smtp-sink" (Postfix's, as the harness uses; the default
#                when it is installed) or "python" (tests/bench/sink.py)
#   PORT         the STARTTLS listener, 127.0.0.1 only; default 28589
#   SINK_PORT    the next hop: closed, then the sink; default 28527
#   SIGN, WORK_DIR   as for run.sh (tests/bench/instance.sh)
#
# What it does, on a scratch instance (instance.sh) whose smarthost is
# 127.0.0.1:SINK_PORT, where nothing listens at first:
#   1. N messages submitted as fast as the load generator can (smtpload,
#      CONC sessions with STARTTLS + AUTH once, as W1): the acceptance
#      rate and latency with the hop down; the daemon's RSS and VmHWM;
#      `postern queue list` counts the queue and the attempts made;
#   2. the daemon stopped (SIGTERM) and started again: the time from its
#      start to "ready" in its log and to the first "220" banner a client
#      gets; its RSS with the backlog loaded; its CPU (utime + stime from
#      /proc/PID/stat, all threads) over IDLE seconds with no client;
#   3. the sink started: the time to the first message delivered, the
#      drain rate counted at the sink (messages / seconds from the first
#      to the N-th), the rate once every message was due (from RETRY_MAX
#      after the sink started: before that, the retry schedule paces the
#      drain, not the daemon) and the total time until all N arrived; the
#      queue counted again (it must be empty), the RSS after.
# A final summary prints the figures. Every process it started (daemon,
# sink, load generator) is stopped by its pid however the script ends.
# Exit status: 0 when all N were accepted and (unless DRAIN=no)
# delivered, 1 otherwise.
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)

N=${N:-200000}
SIZE=${SIZE:-4096}
CONC=${CONC:-20}
IDLE=${IDLE:-30}
DRAIN=${DRAIN:-yes}
RETRY_FIRST=${RETRY_FIRST:-1m}
RETRY_MAX=${RETRY_MAX:-5m}
RETRY_EXPIRE=1d
BENCH_DIR=${BENCH_DIR:-$REPO/../shared/bench}
PORT=${PORT:-28589}
SINK_PORT=${SINK_PORT:-28527}
PY=/usr/bin/python3
BENCH_NAME=backlog
. "$REPO/tests/bench/instance.sh"

for v in "N=$N" "SIZE=$SIZE" "CONC=$CONC" "IDLE=$IDLE"; do
	case ${v#*=} in ''|*[!0-9]*) die "${v%%=*} must be a number" ;; esac
done
case $DRAIN in yes|no) ;; *) die "DRAIN must be yes or no, not $DRAIN" ;; esac
[ "$N" -gt 0 ] || die "N must be at least 1"
if [ -z "${SINK:-}" ]; then
	if command -v smtp-sink >/dev/null; then SINK=smtp-sink; else SINK=python; fi
fi
case $SINK in
smtp-sink) command -v smtp-sink >/dev/null ||
    die "smtp-sink is missing (Debian package postfix): SINK=python uses tests/bench/sink.py" ;;
python) $PY -c 'import aiosmtpd' 2>/dev/null ||
    die "python3-aiosmtpd is missing (apt-get install python3-aiosmtpd)" ;;
*) die "SINK must be smtp-sink or python, not $SINK" ;;
esac

instance_check
port_open "$SINK_PORT" && die "127.0.0.1:$SINK_PORT is in use: the next hop must be down"
instance_dirs

# Disk: a message file (headers, signatures and body: SIZE + ~2 KB) and
# an envelope, each taking whole 4 KB blocks, plus room for the daemon's
# limits.queue_min_free (100 MB) and the sink's log.
per_kb=$(( (SIZE + 2048 + 4095) / 4096 * 4 + 4 ))
need_mb=$(( N * per_kb / 1024 + 200 ))
avail_mb=$(df -Pm "$WORK_DIR" | awk 'NR == 2 { print $4 }')
say "$N messages need about $need_mb MB in $WORK_DIR ($per_kb KB each); $avail_mb MB are free"
[ "$avail_mb" -ge "$need_mb" ] || die "not enough disk space in $WORK_DIR: lower N or give another WORK_DIR"

# The load generator: the harness's smtpload (built in a copy, as run.sh
# does), or sessions.py load.
if [ -f "$BENCH_DIR/smtpload.c" ] && [ -f "$BENCH_DIR/Makefile" ]; then
	say "building smtpload from $BENCH_DIR in $WORK_DIR/harness"
	mkdir -p "$WORK_DIR/harness"
	cp -R "$BENCH_DIR/." "$WORK_DIR/harness/"
	make -s -C "$WORK_DIR/harness" smtpload >/dev/null ||
	    die "cannot build smtpload in $WORK_DIR/harness"
	LOADER="smtpload"
else
	say "no harness in $BENCH_DIR: the load comes from sessions.py (slower than smtpload)"
	LOADER="sessions.py"
fi

instance_setup

LOAD_PID=""
BANNER_PID=""
cleanup() {
	stop_pid "$LOAD_PID"
	LOAD_PID=""
	stop_pid "$BANNER_PID"
	BANNER_PID=""
	instance_stop
	stop_pid "$SINK_PID"
	SINK_PID=""
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM HUP

# queue_stats - "MESSAGES ATTEMPTS": `postern queue list` prints one line
# per queued message, with attempts=N once it has been tried.
queue_stats() {
	./postern queue list -c "$CONF" 2>/dev/null | awk '
	    { n++; for (i = 1; i <= NF; i++) if ($i ~ /^attempts=/) a += substr($i, 10) }
	    END { printf "%d %d\n", n, a }'
}
# cpu_ticks - the daemon's utime + stime (all its threads), in clock ticks
cpu_ticks() {
	sed 's/^.*) //' "/proc/$PID/stat" | awk '{ print $12 + $13 }'
}
# dur_ms DURATION - a duration as the configuration takes it ("90",
# "45s", "5m", "2h", "1d") in milliseconds
dur_ms() {
	case $1 in
	*s) echo $(( ${1%s} * 1000 )) ;;
	*m) echo $(( ${1%m} * 60000 )) ;;
	*h) echo $(( ${1%h} * 3600000 )) ;;
	*d) echo $(( ${1%d} * 86400000 )) ;;
	*) echo $(( $1 * 1000 )) ;;
	esac
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# --- 1. the backlog, with the next hop down ---------------------------
instance_start
say "postern pid $PID on 127.0.0.1:$PORT, next hop 127.0.0.1:$SINK_PORT down, log $LOG"
rss_empty=$(proc_kb "$PID" VmRSS)

say "queueing $N messages of $SIZE bytes over $CONC sessions ($LOADER)"
if [ "$LOADER" = smtpload ]; then
	per=$(( (N + CONC - 1) / CONC ))
	"$WORK_DIR/harness/smtpload" -H 127.0.0.1 -p "$PORT" --starttls \
	    --auth bench:benchpass -c "$CONC" -m "$per" -n "$N" -s "$SIZE" \
	    --from loadgen@example.test --to sink.test --max-time 86400 -q \
	    >"$WORK_DIR/load.out" 2>&1 &
else
	$PY tests/bench/sessions.py load --port "$PORT" --n "$N" --conc "$CONC" \
	    --size "$SIZE" --cafile "$WORK_DIR/tls/cert.pem" \
	    >"$WORK_DIR/load.out" 2>&1 &
fi
LOAD_PID=$!
load_rc=0
wait "$LOAD_PID" || load_rc=$?
LOAD_PID=""
result=$(sed -n 's/^RESULT //p' "$WORK_DIR/load.out" | tail -n 1)
[ -n "$result" ] || die "the load generator printed no RESULT: $(tail -n 5 "$WORK_DIR/load.out")"
field() { echo "$result" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
accepted=$(field accepted)
say "accepted $accepted: $result"
rss_full=$(proc_kb "$PID" VmRSS)
hwm_full=$(proc_kb "$PID" VmHWM)
set -- $(queue_stats)
queued=$1 attempts=$2
say "queue: $queued messages, $attempts delivery attempts made so far"

# --- 2. restart with the backlog ----------------------------------------
# The daemon lets deliveries in flight finish for stop_timeout (30 s):
# wait longer than that before instance_stop's SIGKILL.
t_stop=$(now_ms)
STOP_TENTHS=450 instance_stop
stop_ms=$(( $(now_ms) - t_stop ))
say "stopped in $stop_ms ms; starting again"
# A client tries for the banner from before the start, so the time to it
# counts from the start (the port may accept before the daemon serves).
# It gives up after 10 minutes, as instance_start does.
$PY - "$PORT" >"$WORK_DIR/banner.time" <<'EOF' &
import socket, sys, time
port = int(sys.argv[1])
deadline = time.time() + 600
while time.time() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.settimeout(60)
            if s.recv(4).startswith(b"220"):
                print(f"{time.time() * 1000:.0f}")
                break
    except OSError:
        pass
    time.sleep(0.01)
EOF
BANNER_PID=$!
sleep 0.3
t_start=$(now_ms)
READY_TENTHS=6000 instance_start
t_ready=$(now_ms)
wait "$BANNER_PID" || true
BANNER_PID=""
t_banner=$(cat "$WORK_DIR/banner.time")
sleep 2
rss_restart=$(proc_kb "$PID" VmRSS)
hwm_restart=$(proc_kb "$PID" VmHWM)
kids=$(proc_children_kb "$PID")
tck=$(getconf CLK_TCK)
set -- $(queue_stats)
attempts0=$2
say "measuring CPU for $IDLE s with no client"
c0=$(cpu_ticks)
t0=$(now_ms)
sleep "$IDLE"
c1=$(cpu_ticks)
t1=$(now_ms)
idle_pct=$(awk -v c="$((c1 - c0))" -v t="$tck" -v ms="$((t1 - t0))" \
    'BEGIN { printf "%.1f", 100 * c / t / (ms / 1000) }')
rss_idle=$(proc_kb "$PID" VmRSS)
set -- $(queue_stats)
idle_attempts=$(($2 - attempts0))

# --- 3. the next hop is back ------------------------------------------
# (DRAIN=no: skipped, for a long retry schedule that would not let the
# drain start in useful time)
if [ "$DRAIN" = yes ]; then
	say "starting the sink ($SINK) on 127.0.0.1:$SINK_PORT"
	t_sink=$(now_ms)
	if [ "$SINK" = smtp-sink ]; then
		# -c: counters on stdout, one "sess=N quit=N mesg=N" per event
		if [ "$(id -u)" = 0 ]; then sink_user="-u nobody"; else sink_user=""; fi
		# shellcheck disable=SC2086
		smtp-sink -c $sink_user "127.0.0.1:$SINK_PORT" 256 >"$WORK_DIR/sink.out" 2>&1 &
		SINK_PID=$!
		sink_count() {
			tail -c 200 "$WORK_DIR/sink.out" 2>/dev/null | tr '\r' '\n' |
			    sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1 | grep . || echo 0
		}
		wait_port "$SINK_PORT" 100 || die "smtp-sink did not start: $(cat "$WORK_DIR/sink.out")"
	else
		sink_start
	fi
	# Count at the sink every 0.2 s until all N are there, or nothing has
	# arrived for DRAIN_STALL seconds (default 300).
	# RETRY_MAX after the sink started, every message still queued is due
	# (its last attempt was before the sink started): from then on the rate
	# is the daemon's, not the retry schedule's.
	stall=${DRAIN_STALL:-300}
	t_due_at=$((t_sink + $(dur_ms "$RETRY_MAX")))
	t_first="" t_due="" due_count=0 last=0 t_last=$(now_ms)
	while :; do
		c=$(sink_count)
		now=$(now_ms)
		if [ "$c" -gt 0 ] && [ -z "$t_first" ]; then t_first=$now; fi
		if [ "$now" -ge "$t_due_at" ] && [ -z "$t_due" ]; then
			t_due=$now due_count=$c
		fi
		if [ "$c" -gt "$last" ]; then last=$c t_last=$now; fi
		[ "$c" -lt "$accepted" ] || break
		if [ $((now - t_last)) -gt $((stall * 1000)) ]; then
			say "nothing more arrived for $stall s: stopping the count at $c"
			break
		fi
		sleep 0.2
	done
	delivered=$last
	t_end=$t_last
	# The sink counts a message at its end of DATA; the daemon removes it from
	# its queue a moment later: give it up to 60 s.
	n=0
	while :; do
		set -- $(queue_stats)
		left=$1
		[ "$left" -gt 0 ] && [ $n -lt 300 ] || break
		sleep 0.2
		n=$((n + 1))
	done
	rss_drained=$(proc_kb "$PID" VmRSS)
	hwm_drained=$(proc_kb "$PID" VmHWM)
	if [ -n "$t_first" ] && [ "$t_end" -gt "$t_first" ]; then
		drain=$(awk -v n="$delivered" -v ms="$((t_end - t_first))" \
		    'BEGIN { printf "%.0f", n / (ms / 1000) }')
	else
		drain="?"
		t_first=$t_sink
	fi
	# the rate once all were due, if a tenth of them or more came after that
	if [ -n "$t_due" ] && [ "$t_end" -gt "$t_due" ] &&
	    [ $(( (delivered - due_count) * 10 )) -ge "$delivered" ]; then
		due_rate="$(awk -v n="$((delivered - due_count))" -v ms="$((t_end - t_due))" \
		    'BEGIN { printf "%.0f", n / (ms / 1000) }') msg/s for the $((delivered - due_count)) delivered once all were due"
	else
		due_rate="n/a (fewer than a tenth delivered once all were due, $RETRY_MAX after the sink started)"
	fi
fi

echo
echo "=== backlog.sh summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, signing: $SIGN)"
echo "load:               N=$N messages of $SIZE bytes, $CONC sessions ($LOADER); relay.retry first $RETRY_FIRST, max $RETRY_MAX"
echo "accepted, hop down: $accepted ($(field rejected) refused) at $(field rate) msg/s," \
    "p50 $(field p50_ms) ms, p99 $(field p99_ms) ms, in $(field elapsed) s"
echo "queue then:         $queued messages, $attempts delivery attempts made while the hop was down"
echo "daemon RSS:         empty $(mb "$rss_empty") MB; with the backlog $(mb "$rss_full") MB" \
    "(VmHWM $(mb "$hwm_full") MB)"
echo "restart:            stopped in $stop_ms ms; start -> ready $(secs "$t_start" "$t_ready") s," \
    "start -> first banner $([ -n "$t_banner" ] && secs "$t_start" "$t_banner" || echo "?") s"
echo "after the restart:  VmRSS $(mb "$rss_restart") MB (VmHWM $(mb "$hwm_restart") MB," \
    "children $(mb "$kids") MB); after $IDLE s $(mb "$rss_idle") MB"
echo "CPU, no client:     $idle_pct % of a core over $(secs "$t0" "$t1") s, hop still down;" \
    "$idle_attempts delivery attempts meanwhile (retries due within $RETRY_MAX)"
if [ "$DRAIN" = yes ]; then
	echo "drain:              ($SINK) first message $(secs "$t_sink" "$t_first") s after the sink started;" \
	    "$delivered of $accepted delivered at $drain msg/s (first to last); all in $(secs "$t_sink" "$t_end") s"
	echo "drain, all due:     $due_rate"
	echo "queue after:        $left messages; daemon VmRSS $(mb "$rss_drained") MB (VmHWM $(mb "$hwm_drained") MB)"
else
	echo "drain:              skipped (DRAIN=no)"
fi
echo "issue 13: 50,000 queued took RSS 15 -> 103 MB, idle CPU ~1 %, 2.2 s to listen;" \
    "targets: accept at the W1 rate, <= 200 MB at 200,000, drain >= the W1 rate"
echo "scratch instance: $WORK_DIR (log $LOG); its queue holds what was not delivered"
[ "$load_rc" = 0 ] && [ "$accepted" = "$N" ] || exit 1
[ "$DRAIN" = no ] || { [ "$delivered" -ge "$N" ] && [ "$left" = 0 ]; }
