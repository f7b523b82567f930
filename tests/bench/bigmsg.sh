#!/bin/sh
# bigmsg.sh - what one big message costs this build of Postern in memory
# (issue 13: a 25 MB message raises RSS by at most a few MB, streamed
# from the socket through the signer to disk and on to the next hop).
#
# Usage, from anywhere:
#   tests/bench/bigmsg.sh              (make bench-bigmsg)
#
# Settings, from the environment:
#   BYTES        size of the message as submitted (default 25000000)
#   PORT         the STARTTLS listener, 127.0.0.1 only; default 28588
#   SINK_PORT    the next hop (tests/bench/sink.py); default 28526
#   SIGN, WORK_DIR   as for run.sh (tests/bench/instance.sh)
#
# What it does: a scratch instance (instance.sh; limits.message_size
# raised only if BYTES needs it) relaying to sink.py, which stores what it
# receives. One small message first, delivered, so that keys, worker
# threads and buffers are warm; then, with the daemon's VmRSS sampled
# every 5 ms from /proc/PID/status (bigmsg.py sample) and its VmHWM reset
# (writing 5 to /proc/PID/clear_refs):
#   1. RSS before;
#   2. the message submitted with smtplib (STARTTLS, AUTH PLAIN, SIZE=);
#   3. delivered to the sink (the script waits for it);
#   4. RSS after (1 s later), the peak sampled while it was submitted and
#      while it was delivered, and VmHWM (the kernel's peak since the
#      reset: it catches what 5 ms sampling could miss);
#   5. the message as received checked: the bytes sent arrived intact
#      after the added header fields, and every DKIM-Signature verifies
#      with dkimpy, the public keys derived from the key files by openssl.
# A final summary prints the figures. Every process it started (daemon,
# sink, sampler) is stopped by its pid however the script ends.
# Exit status: 0 when the message arrived whole and verified, 1 otherwise.
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)

BYTES=${BYTES:-25000000}
PORT=${PORT:-28588}
SINK_PORT=${SINK_PORT:-28526}
PY=/usr/bin/python3
BENCH_NAME=bigmsg
. "$REPO/tests/bench/instance.sh"

case $BYTES in ''|*[!0-9]*) die "BYTES must be a number" ;; esac
$PY -c 'import aiosmtpd, dkim' 2>/dev/null ||
    die "python3-aiosmtpd and python3-dkim are needed (apt-get install python3-aiosmtpd python3-dkim)"

instance_check
instance_dirs
# the default limit (25 MiB) takes the default message; a bigger one
# needs a bigger limit
MESSAGE_SIZE=26214400
[ "$BYTES" -lt $((MESSAGE_SIZE - 65536)) ] || MESSAGE_SIZE=$((BYTES + 1048576))
instance_setup

SAMPLER_PID=""
cleanup() {
	stop_pid "$SAMPLER_PID"
	SAMPLER_PID=""
	instance_stop
	stop_pid "$SINK_PID"
	SINK_PID=""
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM HUP

say "making a message of $BYTES bytes"
$PY tests/bench/bigmsg.py make --bytes "$BYTES" --out "$WORK_DIR/big.eml" ||
    die "cannot write $WORK_DIR/big.eml"

sink_start --dir "$WORK_DIR/received"
instance_start
say "postern pid $PID on 127.0.0.1:$PORT, log $LOG"

now() { date +%s.%N; }

# Warm up: one small message, sent and delivered.
$PY tests/bench/sessions.py probe --port "$PORT" --count 1 \
    --cafile "$WORK_DIR/tls/cert.pem" >/dev/null || die "the small message was refused"
wait_sink 1 30 || die "the small message did not reach the sink in 30 s"
sleep 1

$PY tests/bench/bigmsg.py sample --pid "$PID" --out "$WORK_DIR/rss.samples" &
SAMPLER_PID=$!
rss0=$(proc_kb "$PID" VmRSS)
hwm_all=$(proc_kb "$PID" VmHWM)
# Reset VmHWM to the current RSS, so that it shows the peak from now on.
if echo 5 >"/proc/$PID/clear_refs" 2>/dev/null; then
	hwm_reset=yes
else
	hwm_reset="no (cannot write /proc/$PID/clear_refs)"
fi

say "submitting the message"
sent=$($PY tests/bench/bigmsg.py send --port "$PORT" --file "$WORK_DIR/big.eml" \
    --cafile "$WORK_DIR/tls/cert.pem") || die "the big message was refused"
t_start=$(echo "$sent" | sed -n 's/.*start=\([0-9.]*\).*/\1/p')
t_sent=$(echo "$sent" | sed -n 's/.*end=\([0-9.]*\).*/\1/p')
say "accepted; waiting for the sink"
wait_sink 2 300 || die "the big message did not reach the sink in 300 s"
t_done=$(now)
sleep 1
rss1=$(proc_kb "$PID" VmRSS)
hwm1=$(proc_kb "$PID" VmHWM)
stop_pid "$SAMPLER_PID"
SAMPLER_PID=""

peak() {
	$PY tests/bench/bigmsg.py peak --samples "$WORK_DIR/rss.samples" \
	    --from "$1" --to "$2"
}
peak_sub=$(peak "$t_start" "$t_sent")
peak_del=$(peak "$t_sent" "$t_done")
nsamples=$(wc -l <"$WORK_DIR/rss.samples")
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rise() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", (b - a) / 1024 }'; }

say "checking what the sink received"
check=$($PY tests/bench/bigmsg.py check --sent "$WORK_DIR/big.eml" \
    --got "$WORK_DIR/received/2.eml" --keydir "$STATE/keys/example.test") &&
    ok=0 || ok=1

echo
echo "=== bigmsg.sh summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, signing: $SIGN)"
echo "message:            $BYTES bytes; submitted in $(secs "$t_start" "$t_sent") s," \
    "at the sink $(secs "$t_sent" "$t_done") s later"
echo "daemon VmRSS before:       $(mb "$rss0") MB (VmHWM since start $(mb "$hwm_all") MB)"
echo "peak while submitted:      $(mb "$peak_sub") MB ($(rise "$rss0" "$peak_sub") MB)"
echo "peak while delivered:      $(mb "$peak_del") MB ($(rise "$rss0" "$peak_del") MB)"
echo "VmHWM since before:        $(mb "$hwm1") MB ($(rise "$rss0" "$hwm1") MB; reset: $hwm_reset)"
echo "VmRSS after:               $(mb "$rss1") MB ($(rise "$rss0" "$rss1") MB)"
echo "samples:                   $nsamples, every 5 ms ($WORK_DIR/rss.samples)"
echo "${check:-CHECK FAIL: no output}"
echo "issue 13's target: RSS rises by at most a few MB"
echo "scratch instance: $WORK_DIR (log $LOG)"
exit $ok
