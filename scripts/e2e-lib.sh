# Shell helpers shared by the end-to-end scripts (sourced, not run): PASS/FAIL counting and process handling.
# The sourcing script sets PASS=0 and FAIL=0.

say() { printf '%s\n' "$*"; }
pass() { PASS=$((PASS + 1)); say "PASS: $*"; }
fail() { FAIL=$((FAIL + 1)); say "FAIL: $*"; }

# wait_for SECONDS command...: poll every 0.1 s until the command succeeds; fails after SECONDS
wait_for() {
    local n=$(($1 * 10))
    shift
    while ((n-- > 0)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    "$@"
}

stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 5 s
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
pidfile() { [ -f "$1" ] && cat "$1"; }
