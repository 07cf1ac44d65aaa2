# Shell helpers shared by the end-to-end and OVS benchmark scripts (sourced, not run): PASS/FAIL counting, process
# handling, a private Open vSwitch with DPDK.
# The sourcing script sets PASS=0 and FAIL=0.

say() { printf '%s\n' "$*"; }
pass() { PASS=$((PASS + 1)); say "PASS: $*"; }
fail() { FAIL=$((FAIL + 1)); say "FAIL: $*"; }

# check "description" command...: PASS if the command succeeds (its output in $WORK/check.out; a script that shows
# some of a passing check's output defines check_shown, which gets it on stdin), else FAIL with its last 15 lines
check() {
    local what=$1
    shift
    if "$@" >"$WORK/check.out" 2>&1; then
        pass "$what"
        if declare -F check_shown >/dev/null; then check_shown <"$WORK/check.out"; fi
    else
        fail "$what"
        sed 's/^/      /' "$WORK/check.out" | tail -n 15
    fi
}

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

# stop_pid PID [SIGNAL]: SIGNAL (default TERM: background jobs of a script ignore SIGINT), then SIGKILL after 5 s.
# Every step may fail (the process gone, not a child of this shell): safe under set -eE with an ERR trap.
stop_pid() {
    local pid=$1 sig=${2:-TERM}
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 0
}
pidfile() { [ -f "$1" ] && cat "$1"; }

# start_watchdog SECONDS: whatever hangs, the script gets SIGTERM (its trap cleans up) after SECONDS; WATCHDOG is the
# watchdog's pid (kill it at the end: it exits quietly)
start_watchdog() {
    (
        trap 'kill $sp 2>/dev/null; exit 0' TERM
        sleep "$1" &
        sp=$!
        wait $sp
        kill -TERM $$ 2>/dev/null
    ) &
    WATCHDOG=$!
}

# ovs_use DIR: OVS's tools (ovs-vsctl, ovs-appctl, ovs-ofctl) find their database, sockets and logs in DIR, never
# in the system's /var/run/openvswitch; DB is DIR's database socket (for ovs-vsctl --db).
ovs_use() {
    export OVS_RUNDIR="$1" OVS_LOGDIR="$1" OVS_DBDIR="$1" OVS_SYSCONFDIR="$1"
    DB="unix:$1/db.sock"
}

# ovs_ports_up "DPDK_PORT..." "PORT...": every port has an OpenFlow port number and no error, the DPDK ports' links
# are up; prints each port's state (indented) whatever the verdict
ovs_ports_up() {
    local i ok=0
    for i in $1 $2; do
        printf '  %s: ofport=%s link_state=%s error=%s\n' "$i" "$(vsctl get interface "$i" ofport)" \
            "$(vsctl get interface "$i" link_state 2>/dev/null)" "$(vsctl get interface "$i" error 2>/dev/null)"
    done
    for i in $1; do [ "$(vsctl get interface "$i" link_state)" = up ] || ok=1; done
    for i in $1 $2; do
        [ "$(vsctl get interface "$i" ofport)" -gt 0 ] 2>/dev/null || ok=1
        [ "$(vsctl get interface "$i" error 2>/dev/null)" = "[]" ] || ok=1
    done
    return $ok
}

# ovs_start DIR NS OTHER_CONFIG...: a private Open vSwitch with DPDK (Debian's openvswitch-switch-dpdk, userspace
# datapath, no system service): ovsdb-server on a new database in DIR (socket DIR/db.sock), the settings
# other_config:dpdk-init=true OTHER_CONFIG... (other_config:KEY=VALUE), then $OVS_VSWITCHD in network namespace NS
# (its bridges' TAP devices live there). Pid files (db.pid, vswitchd.pid), control sockets (db.ctl, vswitchd.ctl)
# and logs (ovsdb-server.log, ovs-vswitchd.log) in DIR. Uses the caller's vsctl (ovs-vsctl on DIR's database, with
# its timeouts) after ovs_use DIR. Returns 0 once
# ovs-vswitchd has initialized DPDK; non-zero at the first step that fails, or after 30 s without DPDK.
ovs_start() {
    local d=$1 ns=$2
    shift 2
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema &&
        timeout 20 ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/db.pid" \
            --unixctl="$d/db.ctl" --log-file="$d/ovsdb-server.log" --detach &&
        vsctl --no-wait init &&
        vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true "$@" &&
        timeout 60 ip netns exec "$ns" "$OVS_VSWITCHD" "unix:$d/db.sock" --pidfile="$d/vswitchd.pid" \
            --unixctl="$d/vswitchd.ctl" --log-file="$d/ovs-vswitchd.log" --detach &&
        wait_for 30 sh -c "[ \"\$(ovs-vsctl --db=unix:$d/db.sock --timeout=5 get Open_vSwitch . dpdk_initialized)\" = true ]"
}
