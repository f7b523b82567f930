# instance.sh - sourced by the scripts in tests/bench (run.sh,
# sessions.sh, bigmsg.sh, backlog.sh): the scratch Postern instance they
# measure. It defines functions and sets nothing else until called.
#
# Before sourcing, the script sets:
#   REPO         the repository's top directory (the script cd's there;
#                ./postern is used)
#   BENCH_NAME   prefix of the messages say and die print ("bench")
# and, for instance_config, any of these (defaults in brackets):
#   PORT         the STARTTLS listener on 127.0.0.1 [15871]
#   SINK_PORT    where everything is relayed: smarthost and the route for
#                sink.test, plain SMTP on 127.0.0.1 [2525, the harness's
#                smtp-sink]
#   SIGN         "both" (rsa-sha256 + ed25519-sha256) or "rsa" [both]
#   WORK_DIR     scratch directory [a new /tmp/postern-bench.XXXXXX]
#   CONNECTIONS, CONNECTIONS_PER_IP, COMMAND_TIMEOUT, MESSAGE_SIZE
#                limits.connections, .connections_per_ip,
#                .command_timeout, .message_size [1000, 1000, "5m",
#                26214400: the daemon's defaults but connections_per_ip]
#   RETRY_FIRST, RETRY_MAX, RETRY_EXPIRE  relay.retry ["1s", "10s", "1h"]
#   RELAY_CONNECTIONS_PER_HOST  relay.connections_per_host [20]
#
# The instance: hostname relay.example.test, a self-signed certificate
# (for relay.example.test and 127.0.0.1), SASL user "bench" with password
# "benchpass" allowed to send as loadgen@example.test, DKIM keys for
# example.test (written by `postern keys generate`), no rate limits,
# relay.mode "smarthost" to 127.0.0.1:SINK_PORT without TLS (and a route
# for the recipient domain sink.test, so no DNS lookup happens at RCPT).
# Started as root it runs as "nobody" (the daemon never runs its loop as
# root); started as another user it stays that user. Nothing but loopback
# is used, and only the daemon's external interfaces: the configuration
# file, its command line, its log and /proc.
#
# The calls, in order:
#   instance_check     ./postern and openssl present, PORT free
#   instance_dirs      WORK_DIR made; sets CONF, STATE, LOG, RUN_USER
#   instance_setup     certificate, state directory, keys, user, config
#                      checked by `postern check-config`
#   instance_start     starts the daemon (PID), waits for its "ready"
#   instance_stop      SIGTERM by PID, SIGKILL after 10 s (or STOP_TENTHS
#                      tenths of a second); safe to call twice, and meant
#                      for the caller's EXIT trap
# Each failure calls die (exit 1) with the reason. Helpers for the
# measurements, each described where it is defined: say, die, port_open,
# wait_port, now_ms, proc_kb, proc_children, proc_children_kb, stop_pid,
# sink_start, sink_count, wait_sink, mb.

say() { echo "${BENCH_NAME:-bench}: $*" >&2; }
die() { say "$*"; exit 1; }

# port_open PORT - true if something accepts on 127.0.0.1:PORT (bash's
# /dev/tcp, as the harness itself uses)
port_open() {
	bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' sh "$1" 2>/dev/null
}

# wait_port PORT TENTHS - wait until 127.0.0.1:PORT accepts, at most
# TENTHS tenths of a second; false if it never did
wait_port() {
	_n=0
	until port_open "$1"; do
		[ "$_n" -lt "$2" ] || return 1
		sleep 0.1
		_n=$((_n + 1))
	done
}

# now_ms - wall clock in milliseconds (for start-up times)
now_ms() {
	/usr/bin/python3 -c 'import time; print(int(time.time() * 1000))'
}

instance_check() {
	PORT=${PORT:-15871}
	SINK_PORT=${SINK_PORT:-2525}
	SIGN=${SIGN:-both}
	case $SIGN in
	both|rsa) ;;
	*) die "SIGN must be both or rsa, not $SIGN" ;;
	esac
	case $PORT in
	''|*[!0-9]*) die "PORT must be a number" ;;
	esac
	case $SINK_PORT in
	''|*[!0-9]*) die "SINK_PORT must be a number" ;;
	esac
	[ -x ./postern ] || die "./postern is missing: run make first"
	command -v openssl >/dev/null || die "openssl is missing"
	if port_open "$PORT"; then
		die "127.0.0.1:$PORT is in use: choose another PORT"
	fi
}

instance_dirs() {
	# The daemon (nobody, when we are root) must be able to reach its
	# state directory, so the top is 0755 and the state 0700.
	if [ -z "${WORK_DIR:-}" ]; then
		WORK_DIR=$(mktemp -d /tmp/postern-bench.XXXXXX)
	fi
	mkdir -p "$WORK_DIR"
	WORK_DIR=$(cd "$WORK_DIR" && pwd)
	chmod 755 "$WORK_DIR"
	CONF=$WORK_DIR/postern.conf
	STATE=$WORK_DIR/state
	LOG=$WORK_DIR/postern.log
	[ ! -e "$STATE/queue" ] ||
	    die "$WORK_DIR already holds an instance: give a new WORK_DIR"
	if [ "$(id -u)" = 0 ]; then
		RUN_USER=nobody
		USER_LINE='user = "nobody";'
	else
		RUN_USER=$(id -un)
		USER_LINE='# started by a user: the daemon stays that user'
	fi
}

# instance_config DKIM_LIST - write the configuration, with DKIM_LIST as
# the keys of example.test (empty before the keys exist).
instance_config() {
	if [ -n "$1" ]; then
		dkim_line="dkim = ( $1 );"
	else
		dkim_line=""
	fi
	cat >"$CONF" <<EOF
# Scratch instance for the benchmarks, made by tests/bench/instance.sh.
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
	connections_per_ip = ${CONNECTIONS_PER_IP:-1000};
	connections = ${CONNECTIONS:-1000};
	command_timeout = "${COMMAND_TIMEOUT:-5m}";
	message_size = ${MESSAGE_SIZE:-26214400};
};

# Everything to the sink, plain SMTP on loopback; the harness's peer
# (Postfix) uses 20 connections to it, so do we.
relay = {
	mode = "smarthost";
	smarthost = { host = "127.0.0.1"; port = $SINK_PORT; tls = "none"; };
	routes = ( { domain = "sink.test"; next_hop = "[127.0.0.1]:$SINK_PORT";
	             tls = "none"; } );
	connections_per_host = ${RELAY_CONNECTIONS_PER_HOST:-20};
	retry = { first = "${RETRY_FIRST:-1s}"; max = "${RETRY_MAX:-10s}";
	          expire = "${RETRY_EXPIRE:-1h}"; };
};
EOF
}

instance_setup() {
	say "preparing the instance in $WORK_DIR (runs as $RUN_USER)"
	umask 022
	mkdir -p "$WORK_DIR/tls"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
	    -subj "/CN=relay.example.test" \
	    -addext "subjectAltName=DNS:relay.example.test,IP:127.0.0.1" \
	    -keyout "$WORK_DIR/tls/key.pem" -out "$WORK_DIR/tls/cert.pem" \
	    2>/dev/null || die "openssl could not make a certificate"
	chmod 600 "$WORK_DIR/tls/key.pem"

	# The state directory and its subdirectories belong to the daemon's
	# user (INSTALL, "State directory").
	mkdir -p "$STATE/tmp" "$STATE/queue" "$STATE/corrupt"
	chmod 700 "$STATE" "$STATE/tmp" "$STATE/queue" "$STATE/corrupt"
	if [ "$RUN_USER" = nobody ]; then
		chown -R nobody:nogroup "$STATE" 2>/dev/null ||
		    chown -R nobody "$STATE"
	fi

	instance_config ""
	# `keys generate` prints the dkim = ( ... ); line to put in the config.
	keys_out=$(./postern keys generate example.test -c "$CONF") ||
	    die "postern keys generate failed"
	dkim=$(printf '%s\n' "$keys_out" |
	    sed -n 's/^dkim = ( \(.*\) );$/\1/p')
	[ -n "$dkim" ] || die "no dkim line in the output of postern keys generate"
	if [ "$SIGN" = rsa ]; then
		# keep the rsa-sha256 entry only
		dkim=$(printf '%s\n' "$dkim" |
		    sed -n 's/.*\({ selector = "[^"]*"; algorithm = "rsa-sha256"; }\).*/\1/p')
		[ -n "$dkim" ] || die "no rsa-sha256 key in: $keys_out"
	fi
	instance_config "$dkim"

	printf 'benchpass\n' | ./postern users add bench -c "$CONF" >/dev/null ||
	    die "postern users add failed"
	./postern check-config -c "$CONF" >/dev/null ||
	    die "the generated configuration is refused: $(./postern check-config -c "$CONF" 2>&1)"
}

# instance_start - start the daemon in the background (PID), its output
# appended to LOG, and wait for a new "ready" line in it (at most 10 s,
# or READY_TENTHS tenths of a second: a large queue takes longer).
PID=""
instance_start() {
	_before=0
	[ ! -f "$LOG" ] || _before=$(grep -c ' ready ' "$LOG" || true)
	./postern serve -c "$CONF" >>"$LOG" 2>&1 &
	PID=$!
	_n=0
	until [ "$(grep -c ' ready ' "$LOG" 2>/dev/null || true)" -gt "$_before" ]; do
		kill -0 "$PID" 2>/dev/null ||
		    die "postern did not start; its log ($LOG):
$(tail -n 40 "$LOG")"
		[ $_n -lt "${READY_TENTHS:-100}" ] ||
		    die "postern not ready after $((${READY_TENTHS:-100} / 10)) s; see $LOG"
		sleep 0.1
		_n=$((_n + 1))
	done
}

instance_stop() {
	[ -n "$PID" ] || return 0
	if kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null || true
		_n=0
		while kill -0 "$PID" 2>/dev/null &&
		    [ $_n -lt "${STOP_TENTHS:-100}" ]; do
			sleep 0.1
			_n=$((_n + 1))
		done
		if kill -0 "$PID" 2>/dev/null; then
			say "postern (pid $PID) still running after $((${STOP_TENTHS:-100} / 10)) s: SIGKILL"
			kill -KILL "$PID" 2>/dev/null || true
		fi
	fi
	wait "$PID" 2>/dev/null || true
	PID=""
}

# proc_kb PID FIELD - a "FIELD: N kB" line of /proc/PID/status, as N
proc_kb() {
	sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null
}

# proc_children PID - the pids of PID's child processes (of every thread)
proc_children() {
	cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true
}

# proc_children_kb PID - the VmRSS of PID's child processes together, in kB
proc_children_kb() {
	_t=0
	for _c in $(proc_children "$1"); do
		_k=$(proc_kb "$_c" VmRSS)
		_t=$((_t + ${_k:-0}))
	done
	echo "$_t"
}

# stop_pid PID - SIGTERM to PID, a process the script started, and reap
# it; nothing when PID is empty
stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# sink_start [ARG...] - tests/bench/sink.py on 127.0.0.1:SINK_PORT
# (SINK_PID), counting what it receives in WORK_DIR/sink.count, with
# ARGs added (--dir DIR: keep the messages); its stderr in WORK_DIR/sink.log
SINK_PID=""
sink_start() {
	port_open "$SINK_PORT" &&
	    die "127.0.0.1:$SINK_PORT is in use: choose another SINK_PORT"
	/usr/bin/python3 "$REPO/tests/bench/sink.py" --port "$SINK_PORT" \
	    --count-file "$WORK_DIR/sink.count" "$@" 2>>"$WORK_DIR/sink.log" &
	SINK_PID=$!
	wait_port "$SINK_PORT" 100 ||
	    die "the sink did not start: $(cat "$WORK_DIR/sink.log")"
}

# sink_count - messages the sink has received so far
sink_count() { cat "$WORK_DIR/sink.count" 2>/dev/null || echo 0; }

# wait_sink N SECONDS - until the sink has N messages; false after SECONDS
wait_sink() {
	_n=0
	until [ "$(sink_count)" -ge "$1" ]; do
		[ $_n -lt $(($2 * 10)) ] || return 1
		sleep 0.1
		_n=$((_n + 1))
	done
}

# mb KB - kilobytes as megabytes, one decimal
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
