//! Faults while greway runs under load, on real DPDK virtual ports:
//! - the egress link goes down (a net_tap port, `ip link set IF down`): the kernel refuses the TAP writes, the
//!   PMD takes nothing, greway counts `tx_full` and frees the mbufs; `ip link set IF up`: forwarding resumes;
//! - a second greway with the same EAL `--file-prefix`: a clear error and exit 1, before it touches EAL or the
//!   first one's files; the first keeps forwarding and exits 0 with exact counters.
//!
//! - IPv4 packets with wrong header checksums arrive on a net_tap port whose rx checksum offload is on: the PMD
//!   marks them bad, greway drops and counts them (bad_ip_header) and encapsulates the good ones.
//!
//! The TAP tests need root (CAP_NET_ADMIN); the suite runs as root.
mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn load_pcap(dir: &Path) {
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            udp4_frame(
                [2, 0, 0, 0, 0, 0x0a],
                [2, 0, 0, 0, 0, 1],
                [10, 0, 0, 2],
                [10, 20, 0, (i % 250) as u8 + 1],
                i,
                &[0x55; 64],
            )
        })
        .collect();
    write_pcap(&dir.join("in.pcap"), &frames);
}

fn gateway_config(dir: &Path, prefix_tag: &str, outside_device: &str) -> String {
    let inside = format!("net_pcap0,rx_pcap={}/in.pcap,infinite_rx=1", dir.display());
    gateway_config_with(prefix_tag, &inside, outside_device)
}

fn gateway_config_with(prefix_tag: &str, inside_device: &str, outside_device: &str) -> String {
    format!(
        r#"
[eal]
args = {eal}
[dataplane]
workers = [1]
[[port]]
name = "inside"
device = "{inside_device}"
address = "10.0.0.1/24"
mac = "02:00:00:00:00:01"
[[port]]
name = "outside"
device = "{outside_device}"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
[[tunnel]]
name = "site-b"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
routes = ["10.20.0.0/16"]
[[neighbor]]
port = "outside"
ip = "192.0.2.254"
mac = "02:00:00:00:00:fe"
[[route]]
prefix = "198.51.100.0/24"
via = "192.0.2.254"
port = "outside"
"#,
        eal = eal_args(prefix_tag),
    )
}

fn spawn(dir: &Path, name: &str, cfg: &str) -> Child {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, cfg).unwrap();
    Command::new(greway_bin())
        .args(["run", "--quiet", "--config"])
        .arg(&path)
        .arg("--stats-json")
        .arg(dir.join(format!("{name}-stats.json")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn greway")
}

fn stop(mut child: Child, what: &str) -> std::process::Output {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{what} did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} exit {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stats(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}-stats.json"))).unwrap())
        .unwrap()
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap()
}

/// rx == tx + drops over both ports, and every mbuf back in the pool.
fn assert_accounted(s: &serde_json::Value) {
    let rx = n(&s["ports"]["inside"]["rx"]) + n(&s["ports"]["outside"]["rx"]);
    let tx = n(&s["ports"]["inside"]["tx"]) + n(&s["ports"]["outside"]["tx"]);
    let drops: u64 = s["drops"].as_object().unwrap().values().map(n).sum();
    assert_eq!(rx, tx + drops, "every packet accounted for: {s}");
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked: {s}"
    );
}

fn kernel_rx(ifname: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/rx_packets"))
        .unwrap_or_else(|e| panic!("{ifname} statistics: {e}"))
        .trim()
        .parse()
        .unwrap()
}

fn ip_link(ifname: &str, state: &str) {
    let st = Command::new("ip")
        .args(["link", "set", ifname, state])
        .status()
        .expect("ip (iproute2)");
    assert!(st.success(), "ip link set {ifname} {state}");
}

fn wait_for_iface(ifname: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !Path::new(&format!("/sys/class/net/{ifname}")).exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("greway exited early: {st}");
        }
        assert!(Instant::now() < deadline, "{ifname} never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tap_link_down_counts_tx_full_without_leak_and_link_up_recovers() {
    assert_eq!(
        real_uid(),
        0,
        "this test needs root for net_tap (run the suite as root, as CI does)"
    );
    let dir = scratch("fault-tap");
    load_pcap(&dir);
    let ifname = format!("gwd{}", std::process::id() % 1_000_000);
    let cfg = gateway_config(&dir, "tap", &format!("net_tap0,iface={ifname}"));
    let mut child = spawn(&dir, "tap", &cfg);
    wait_for_iface(&ifname, &mut child);
    std::thread::sleep(Duration::from_millis(1500));

    let up1 = kernel_rx(&ifname);
    std::thread::sleep(Duration::from_millis(500));
    let up2 = kernel_rx(&ifname);
    assert!(
        up2 > up1,
        "forwarding into the TAP while up: {up1} -> {up2}"
    );

    ip_link(&ifname, "down");
    std::thread::sleep(Duration::from_millis(300));
    let down1 = kernel_rx(&ifname);
    std::thread::sleep(Duration::from_millis(1000));
    let down2 = kernel_rx(&ifname);
    assert_eq!(down1, down2, "nothing delivered while the link is down");

    ip_link(&ifname, "up");
    std::thread::sleep(Duration::from_millis(300));
    let rec1 = kernel_rx(&ifname);
    std::thread::sleep(Duration::from_millis(1000));
    let rec2 = kernel_rx(&ifname);
    assert!(
        rec2 > rec1,
        "forwarding resumed after link up: {rec1} -> {rec2}"
    );

    stop(child, "greway (tap)");
    let s = stats(&dir, "tap");
    assert_accounted(&s);
    let tx_full = n(&s["drops"]["tx_full"]);
    assert!(
        tx_full > 0,
        "link down: refused packets counted as tx_full: {s}"
    );
    assert!(
        n(&s["ports"]["outside"]["hw"]["oerrors"]) > 0,
        "the PMD saw the errors: {s}"
    );
    assert!(n(&s["tunnels"]["site-b"]["encap"]) > 0);
    eprintln!(
        "tap fault: kernel rx up {up1}->{up2}, down {down1}->{down2}, after up {rec1}->{rec2}; tx_full {tx_full}, \
         outside tx {}",
        n(&s["ports"]["outside"]["tx"])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn real_uid() -> u32 {
    // std has no getuid; /proc/self/status has "Uid: real effective ...".
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(|v| v.parse().unwrap()))
        .unwrap()
}

#[test]
fn second_instance_with_the_same_file_prefix_fails_and_the_first_is_unharmed() {
    let dir = scratch("fault-prefix");
    load_pcap(&dir);
    // Both use the same prefix (same tag, same test process id).
    let first_cfg = gateway_config(&dir, "dup", "net_null0");
    let mut first = spawn(&dir, "first", &first_cfg);
    let prefix = format!("gwt-dup-{}", std::process::id());
    let lock = Path::new("/var/run/dpdk").join(&prefix).join("greway.lock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lock.exists() {
        assert!(
            first.try_wait().unwrap().is_none(),
            "first greway exited early"
        );
        assert!(
            Instant::now() < deadline,
            "first greway never took its lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let telemetry = || {
        let mut c = Command::new("dpdk-telemetry.py")
            .args(["-f", &prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dpdk-telemetry.py (dpdk package)");
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(b"/ethdev/list\n")
            .unwrap();
        let o = c.wait_with_output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let before = telemetry();
    assert!(
        before.contains("/ethdev/list"),
        "first answers telemetry: {before}"
    );

    // The second instance: same prefix, its own stats file.
    let second = spawn(&dir, "second", &first_cfg);
    let out = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "second exits 1: {err}");
    assert!(
        err.contains("another greway") && err.contains(&prefix),
        "clear error naming the prefix: {err}"
    );
    assert!(!dir.join("second-stats.json").exists());

    // The first is unharmed: its runtime directory and telemetry socket are still there, it keeps forwarding.
    assert!(
        lock.exists(),
        "the second did not remove the first one's runtime directory"
    );
    let after = telemetry();
    assert!(
        after.contains("/ethdev/list"),
        "first still answers telemetry: {after}"
    );
    assert!(first.try_wait().unwrap().is_none(), "first still running");
    std::thread::sleep(Duration::from_millis(1000));
    let _ = stop(first, "first greway");
    let s = stats(&dir, "first");
    assert_accounted(&s);
    let encap = n(&s["tunnels"]["site-b"]["encap"]);
    assert!(encap > 100_000, "the first forwarded under load: {encap}");
    assert_eq!(n(&s["ports"]["outside"]["tx"]), encap);
    assert!(!lock.exists(), "clean exit removes the runtime directory");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Send raw Ethernet frames out of the kernel side of `ifname` (an AF_PACKET socket): a TAP port receives them.
fn send_frames(ifname: &str, frames: &[Vec<u8>]) {
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: plain socket calls on a descriptor we own, with a sockaddr_ll we build and pass with its size.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        assert!(sll.sll_ifindex > 0, "{ifname} has no index");
        sll.sll_halen = 6;
        for f in frames {
            sll.sll_addr[..6].copy_from_slice(&f[..6]);
            let n = libc::sendto(
                fd,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(
                n,
                f.len() as isize,
                "sendto {ifname}: {}",
                std::io::Error::last_os_error()
            );
        }
        libc::close(fd);
    }
}

#[test]
fn tap_rx_checksum_offload_drops_bad_ipv4_headers_and_forwards_good_ones() {
    assert_eq!(
        real_uid(),
        0,
        "this test needs root for net_tap (run the suite as root, as CI does)"
    );
    let dir = scratch("fault-cksum");
    let ifname = format!("gwc{}", std::process::id() % 1_000_000);
    let cfg = gateway_config_with(
        "cksum",
        &format!("net_tap0,iface={ifname}"),
        "net_null0,no-rx=1",
    );
    let mut child = spawn(&dir, "cksum", &cfg);
    wait_for_iface(&ifname, &mut child);
    // No IPv6 autoconfiguration traffic of the kernel's own on the TAP: only our frames.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        "1",
    );
    ip_link(&ifname, "up");
    std::thread::sleep(Duration::from_millis(500));
    const N: usize = 40;
    let mut frames = Vec::new();
    for i in 0..N {
        let good = udp4_frame(
            [2, 0, 0, 0, 0, 0x0a],
            [2, 0, 0, 0, 0, 1],
            [10, 0, 0, 2],
            [10, 20, 0, (i % 250) as u8 + 1],
            i as u16,
            &[0x33; 32],
        );
        let mut bad = good.clone();
        bad[14 + 10] ^= 0x5a;
        frames.push(good);
        frames.push(bad);
    }
    send_frames(&ifname, &frames);
    std::thread::sleep(Duration::from_millis(1000));
    let out = stop(child, "greway (tap rx checksum offload)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("rx IPv4 checksum offload on"),
        "net_tap offers the offload and greway turns it on: {log}"
    );
    let s = stats(&dir, "cksum");
    assert_accounted(&s);
    assert_eq!(n(&s["tunnels"]["site-b"]["encap"]), N as u64, "{s}");
    assert_eq!(n(&s["drops"]["bad_ip_header"]), N as u64, "{s}");
    assert_eq!(n(&s["ports"]["outside"]["tx"]), N as u64, "{s}");
    assert_eq!(
        s["ports"]["inside"]["hw"]["rx_ipv4_cksum_offload"], true,
        "{s}"
    );
    assert_eq!(
        s["ports"]["outside"]["hw"]["rx_ipv4_cksum_offload"], false,
        "net_null: {s}"
    );
    // The good frames took the encap fast path; everything else the TAP received (the bad frames, anything of
    // the kernel's own) the general rules.
    assert_eq!(
        n(&s["general_path_packets"]),
        n(&s["ports"]["inside"]["rx"]) - N as u64,
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
