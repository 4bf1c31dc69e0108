#!/usr/bin/env bash
# The production template (lessons/professional, binary `template`) under real load.
#
#   scripts/bench-template.sh                 (about 4 minutes)
#   BENCH_SECONDS=10 BENCH_PASSES=5 BENCH_IDLE=2000 scripts/bench-template.sh
#
# A maintainer's benchmark, never a test and never on the learner's path. It builds the template
# in release, starts it with limits high enough that nothing is shed or refused (the numbers
# measure the server, not its admission control), and drives it over a range of concurrency:
#
#   - HTTP/1 with wrk: GET / (no work: what the server itself costs) and GET /work?ms=10 (a
#     handler that waits 10 ms, as one that calls a database does), one connection per request
#     in flight;
#   - HTTP/2 with h2load: GET / over 4 connections with many streams each (1 connection with 1
#     stream at concurrency 1);
#
# each point warmed up for 1 s, then measured for BENCH_SECONDS (default 3). The whole sweep runs
# BENCH_PASSES times (default 3) and each figure is the median of its passes: a point disturbed
# by something else on the machine (a compiler, a cron job) is outvoted, and because a pass
# sweeps every point before the next pass starts, a disturbance lands on different points in
# different passes rather than on every run of one point. Then memory per
# connection: the template's VmRSS (from /proc/PID/status) with BENCH_IDLE (default 1000) idle
# keep-alive connections open, each after one request, against the same process before it had
# them, for HTTP/1 and HTTP/2 (a small python3 client opens them).
#
# It writes, under book/src/professional/measurements/:
#   load.csv     protocol,route,concurrency,connections,streams,requests_per_second,p50_ms,p99_ms,errors,passes
#                (medians of the passes; errors summed)
#   load-passes.csv  the same columns for every pass (passes = the pass's number)
#   memory.csv   protocol,idle_connections,rss_before_kib,rss_after_kib,kib_per_connection
#   machine.md   the machine, the tools' versions, the load average, and every command it ran
# then `cargo run -p lessons-professional --example measuring_plot` turns them into SVG plots.
#
# wrk and h2load come from Debian (packages wrk and nghttp2-client) and are installed with
# apt-get when missing. Both tools are closed-loop (a connection sends its next request only
# when the last one is answered), so their latencies understate what an open stream of users
# would see once the server falls behind: book/src/professional/measuring.md explains why.
#
# The load tool runs on the same machine as the server, with one thread (wrk -t1, h2load -t1):
# it takes up to one core, and the template's runtime (one worker per core) gets the rest.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
root=$PWD

secs=${BENCH_SECONDS:-3}
passes=${BENCH_PASSES:-3}
idle=${BENCH_IDLE:-1000}
levels=(1 4 16 64 256)
out=$root/book/src/professional/measurements
scratch=${TMPDIR:-/tmp}/bench-template
mkdir -p "$out" "$scratch"

say() { printf '%s\n' "$*"; }
die() {
  printf 'bench-template: %s\n' "$*" >&2
  exit 1
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

# Every command that produced a number, for machine.md (recorded here: the commands run in
# command substitutions, whose subshells cannot append to the list).
commands=()
record() { commands+=("$*"); }

install_missing() { # command package
  command -v "$1" >/dev/null && return
  say "installing $2 (for $1)"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y "$2" >/dev/null || die "could not install $2"
}
install_missing wrk wrk
install_missing h2load nghttp2-client
command -v python3 >/dev/null || die "python3 is needed to hold idle connections open"

say "building the template (release)"
cargo build --release -p lessons-professional --bin template --quiet
bin=$root/target/release/template

# Limits far above the benchmark's concurrency, so that no request is shed (503), refused
# (429) or kept waiting for a connection permit; the rate limit is off by default.
flags=(--max-connections 10000 --max-in-flight 10000 --rate-per-second 0)

server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
holder_pid=
cleanup() {
  [ -z "$holder_pid" ] || kill "$holder_pid" 2>/dev/null || true
  stop_server
}
trap cleanup EXIT

# Starts the template with the given extra flags; sets server_pid and addr.
start_server() {
  stop_server
  : >"$scratch/stdout"
  record "$bin" --addr 127.0.0.1:0 "${flags[@]}" "$@"
  "$bin" --addr 127.0.0.1:0 "${flags[@]}" "$@" >"$scratch/stdout" 2>"$scratch/template.log" &
  server_pid=$!
  for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$scratch/stdout")
    [ -n "$addr" ] && return
    sleep 0.1
  done
  die "the template printed no 'listening on' line (log: $scratch/template.log)"
}

# wrk prints latencies as 512.00us, 1.20ms or 1.05s.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n
  }'
}

rows=()
http1() { # route concurrency
  local route=$1 c=$2 url="http://$addr$1" report
  wrk -t1 -c"$c" -d1s "$url" >/dev/null # warm-up
  [ "$pass" -gt 1 ] || record wrk -t1 -c"$c" -d"${secs}s" --latency "$url"
  report=$(wrk -t1 -c"$c" -d"${secs}s" --latency "$url")
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$report")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$report")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$report")")
  errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$report")
  rows+=("http1,$route,$c,$c,1,$rps,$p50,$p99,$errors,$pass")
  say "  HTTP/1 $route  c=$c: $rps req/s, p50 $p50 ms, p99 $p99 ms, errors $errors"
}

http2() { # route concurrency
  local route=$1 c=$2 url="http://$addr$1" conns streams report log=$scratch/h2load.log
  conns=$((c < 4 ? 1 : 4))
  streams=$((c / conns))
  h2load -t1 -c"$conns" -m"$streams" -D1 "$url" >/dev/null # warm-up
  rm -f "$log" # h2load appends to its log file
  [ "$pass" -gt 1 ] || record h2load -t1 -c"$conns" -m"$streams" -D"$secs" --log-file="$log" "$url"
  report=$(h2load -t1 -c"$conns" -m"$streams" -D"$secs" --log-file="$log" "$url")
  local rps p50 p99 errors
  rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$report")
  # The log has one line per request: start (µs since the epoch), status, duration (µs).
  read -r p50 p99 < <(cut -f3 "$log" | sort -n | awk '{ d[NR] = $1 } END {
    i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
    i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
    printf "%.3f %.3f\n", d[i50] / 1000, d[i99] / 1000 }')
  errors=$(awk '/^requests:/ {print $12 + $14 + $16}' <<<"$report")
  errors=$((errors + $(awk -F'\t' '$2 != 200' "$log" | wc -l)))
  rows+=("http2,$route,$c,$conns,$streams,$rps,$p50,$p99,$errors,$pass")
  say "  HTTP/2 $route  c=$c ($conns connections x $streams streams): $rps req/s, p50 $p50 ms, p99 $p99 ms, errors $errors"
}

load_before=$(load)
say "load average before: $load_before (2 cores: above ~1.5 the numbers are a loaded machine's)"

say "throughput and latency ($passes passes, ${secs} s a point after 1 s of warm-up)"
start_server
for pass in $(seq "$passes"); do
  say " pass $pass of $passes (load average $(load))"
  for c in "${levels[@]}"; do http1 / "$c"; done
  for c in "${levels[@]}"; do http1 "/work?ms=10" "$c"; done
  for c in "${levels[@]}"; do http2 / "$c"; done
done
stop_server
header="protocol,route,concurrency,connections,streams,requests_per_second,p50_ms,p99_ms,errors,passes"
{
  echo "$header"
  printf '%s\n' "${rows[@]}"
} >"$out/load-passes.csv"
# The median of each figure over the passes, in the order the points were first measured.
{
  echo "$header"
  printf '%s\n' "${rows[@]}" | awk -F, '
    function median(list, n,   a, i, j, t) {
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
        t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
      }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
      key = $1 "," $2 "," $3 "," $4 "," $5
      if (!(key in n)) order[++keys] = key
      n[key]++; rps[key] = rps[key] " " $6; p50[key] = p50[key] " " $7; p99[key] = p99[key] " " $8
      errors[key] += $9
    }
    END {
      for (k = 1; k <= keys; k++) {
        key = order[k]
        printf "%s,%.2f,%.3f,%.3f,%d,%d\n", key, median(rps[key]), median(p50[key]), median(p99[key]), errors[key], n[key]
      }
    }'
} >"$out/load.csv"

# Holds N idle connections open after one request each, prints "ready", then waits to be killed.
hold_connections() { # protocol
  python3 - "$addr" "$idle" "$1" "$scratch/ready" <<'PY' &
import socket, struct, sys, time

host, port = sys.argv[1].rsplit(":", 1)
count, proto, ready = int(sys.argv[2]), sys.argv[3], sys.argv[4]

def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("closed by the server")
        data += chunk
    return data

def http1(s):
    s.sendall(f"GET / HTTP/1.1\r\nhost: {sys.argv[1]}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(s, 1)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    read_exact(s, length)

def http2(s):
    # Prior knowledge (h2c): the preface, an empty SETTINGS, then GET / on stream 1 with
    # HPACK's static table (:method GET, :scheme http, :path /) and a literal :authority.
    authority = sys.argv[1].encode()
    block = b"\x82\x86\x84\x41" + bytes([len(authority)]) + authority
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
              + struct.pack(">I", len(block))[1:] + b"\x01\x05" + struct.pack(">I", 1) + block)
    while True:
        head = read_exact(s, 9)
        length, kind, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
        stream = int.from_bytes(head[5:], "big") & 0x7FFFFFFF
        read_exact(s, length)
        if kind == 4 and not flags & 1:  # the server's SETTINGS: acknowledge them
            s.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
        if kind in (0, 1) and stream == 1 and flags & 1:  # END_STREAM: the answer is whole
            return

held = []
for _ in range(count):
    s = socket.create_connection((host, int(port)))
    (http1 if proto == "http1" else http2)(s)
    held.append(s)
open(ready, "w").write("ready\n")
time.sleep(600)
PY
  holder_pid=$!
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }

say "memory per connection ($idle idle keep-alive connections)"
mem_rows=()
for proto in http1 http2; do
  # A 60 s header timeout: hyper's HTTP/1 header timer also runs while a keep-alive
  # connection waits for its next request, and the default 10 s would close them mid-count.
  start_server --header-timeout-ms 60000
  # Warm the allocator and the runtime with a few requests, as a serving process would be.
  if [ "$proto" = http1 ]; then
    wrk -t1 -c4 -d1s "http://$addr/" >/dev/null
  else
    h2load -t1 -c1 -m4 -n2000 "http://$addr/" >/dev/null
  fi
  sleep 1
  before=$(rss_kib)
  rm -f "$scratch/ready"
  record "python3 (this script's holder): $idle $proto connections, one GET / each, then idle"
  hold_connections "$proto"
  for _ in $(seq 300); do
    [ -e "$scratch/ready" ] && break
    kill -0 "$holder_pid" 2>/dev/null || die "the connection holder failed"
    sleep 0.1
  done
  [ -e "$scratch/ready" ] || die "the $proto connections were not all open within 30 s"
  sleep 1
  after=$(rss_kib)
  # The template's own gauge, less the connection that asks for it.
  open=$(curl -s "http://$addr/metrics" | awk '/^connections_open/ {print $2 - 1}' || true)
  kill "$holder_pid" 2>/dev/null || true
  wait "$holder_pid" 2>/dev/null || true
  holder_pid=
  per=$(awk -v a="$after" -v b="$before" -v n="$idle" 'BEGIN {printf "%.1f", (a - b) / n}')
  mem_rows+=("$proto,$idle,$before,$after,$per")
  say "  $proto: VmRSS $before KiB -> $after KiB with $idle idle connections: $per KiB each${open:+ (the template counted $open open)}"
  stop_server
done
{
  echo "protocol,idle_connections,rss_before_kib,rss_after_kib,kib_per_connection"
  printf '%s\n' "${mem_rows[@]}"
} >"$out/memory.csv"

load_after=$(load)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
  # No heading: measuring.md includes this file under its own.
  echo "Written by \`scripts/bench-template.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| cores (nproc) | $(nproc) |"
  echo "| CPU | ${cpu:-unknown} |"
  echo "| memory | $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) |"
  echo "| kernel | $(uname -sr) |"
  echo "| rustc | $(rustc -V) |"
  echo "| wrk | $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-3) |"
  echo "| h2load | $(h2load --version | head -1) |"
  echo "| load average (1, 5, 15 min) before | $load_before |"
  echo "| load average after | $load_after |"
  echo
  echo "The load tool and the template share the machine: one load-tool thread, and the"
  echo "template's tokio runtime with one worker per core."
  echo
  echo "Commands (ADDR is the address the template printed; each load command ran $passes times,"
  echo "in $passes passes over every point, each time after 1 s of warm-up at the same concurrency):"
  echo
  echo '```text'
  printf '%s\n' "${commands[@]}" | sed "s|$root/||; s|127\.0\.0\.1:[1-9][0-9]*|ADDR|g; s|--log-file=[^ ]*|--log-file=LOG|"
  echo '```'
} >"$out/machine.md"

say "wrote $out/{load.csv,load-passes.csv,memory.csv,machine.md}"
say "load average after: $load_after"
say "plots: cargo run -p lessons-professional --example measuring_plot"
