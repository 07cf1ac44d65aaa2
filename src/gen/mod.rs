//! `greway gen`: a GRE traffic generator and latency meter.
//!
//! Contract: transmit prebuilt templates ([`template::Plan`]) on one port at a TSC-paced rate (or as fast as
//! the port takes them) for a duration or a packet count; receive on another port (or the same one) of the same
//! process and measure loss, reordering, duplicates and one-way latency from the 18-byte signature each packet
//! carries (magic, run id, stream id, sequence number, TSC at transmit). Both ends read the same TSC, so the
//! latency needs no clock synchronisation. The transmit loop runs on a pinned, EAL-registered thread (the
//! `[dataplane] workers[0]` core); the receive loop, the live line and the report run on the main thread.
//!
//! Per packet the transmitter makes one copy of the template and the fixups of [`template::Template::stamp`];
//! per burst one bulk mempool allocation, one TSC read and one `tx_burst`. Rates: `Mpps`; `Gbit/s` counts the
//! frame with its FCS, `wire Gbit/s` adds the 20 bytes of preamble, SFD and inter-frame gap per frame.
pub mod rfc2544;
pub mod rx;
pub mod template;

use crate::app::{self, Runtime};
use crate::buf::PacketBuf;
use crate::config::{check_generator, Config, GenEncap, GeneratorCfg, MacAddr};
use crate::dpdk::{self, Burst, Mempool};
use crate::stats::{new_latency_histogram, LatencySummary};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use template::{find_signature, Plan, FCS};

/// Per-frame Ethernet overhead on the wire beyond the frame: preamble + SFD (8) and inter-frame gap (12).
pub const WIRE_OVERHEAD: u64 = 20;

/// `greway gen` flags. Any flag overrides the config's `[generator]` field of the same name.
#[derive(Args, Debug, Clone, Default)]
pub struct GenArgs {
    /// A greway config with `[eal]`, `[dataplane]`, `[[port]]` and an optional `[generator]` section.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Without --config: the device to transmit on (e.g. `net_pcap0,tx_pcap=out.pcap`); its port is `tx`.
    #[arg(long, value_name = "DEVARGS")]
    pub tx_dev: Option<String>,
    /// Without --config: the device to receive on; its port is `rx`.
    #[arg(long, value_name = "DEVARGS")]
    pub rx_dev: Option<String>,
    /// Without --config: EAL arguments (space separated).
    #[arg(
        long,
        value_name = "ARGS",
        allow_hyphen_values = true,
        default_value = "-l 0-1 --no-huge -m 512 --no-pci --no-shconf --file-prefix greway-gen --log-level 3"
    )]
    pub eal_args: String,
    /// Without --config: the core of the transmit thread.
    #[arg(long, default_value_t = 1)]
    pub core: u32,
    /// Port name to transmit on.
    #[arg(long)]
    pub tx_port: Option<String>,
    /// Port name to receive on.
    #[arg(long)]
    pub rx_port: Option<String>,
    /// Rate in packets per second.
    #[arg(long)]
    pub rate_pps: Option<f64>,
    /// Rate in Gbit/s on the wire (20 B per frame of preamble and gap included).
    #[arg(long)]
    pub rate_gbps: Option<f64>,
    /// Seconds to transmit.
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Packets to transmit.
    #[arg(long)]
    pub count: Option<u64>,
    /// Frame size(s) in bytes with FCS; several (comma separated) make a size sweep cycled per packet.
    #[arg(long, value_delimiter = ',')]
    pub size: Vec<u16>,
    /// IMIX 7:4:1 of 64/594/1518-byte frames.
    #[arg(long)]
    pub imix: bool,
    /// `udp` or `gre`.
    #[arg(long)]
    pub encap: Option<String>,
    /// Inner source address (flow j: + j); its family picks the inner IP version.
    #[arg(long)]
    pub inner_src: Option<IpAddr>,
    /// Inner destination address.
    #[arg(long)]
    pub inner_dst: Option<IpAddr>,
    /// GRE outer source address (tunnel i: + i); its family picks the outer IP version.
    #[arg(long)]
    pub outer_src: Option<IpAddr>,
    /// GRE outer destination address (the device's tunnel local address).
    #[arg(long)]
    pub outer_dst: Option<IpAddr>,
    /// Source MAC (default: the tx port's).
    #[arg(long)]
    pub src_mac: Option<String>,
    /// Destination MAC (the device under test's).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// UDP source port of flow 0 (flow j: + j).
    #[arg(long)]
    pub udp_sport: Option<u16>,
    /// UDP destination port.
    #[arg(long)]
    pub udp_dport: Option<u16>,
    /// GRE tunnels (outer source and key + i).
    #[arg(long)]
    pub tunnels: Option<u32>,
    /// Flows per tunnel (inner source and UDP source port + i).
    #[arg(long)]
    pub flows: Option<u32>,
    /// GRE key of tunnel 0.
    #[arg(long)]
    pub key: Option<u32>,
    /// GRE checksum on.
    #[arg(long)]
    pub checksum: bool,
    /// GRE sequence numbers on.
    #[arg(long)]
    pub sequence: bool,
    /// First GRE sequence number (per tunnel).
    #[arg(long)]
    pub sequence_start: Option<u32>,
    /// Packets per tx burst.
    #[arg(long)]
    pub burst: Option<u16>,
    /// Milliseconds the receiver keeps counting after the last packet is sent.
    #[arg(long)]
    pub drain_ms: Option<u32>,
    /// Search the throughput at zero loss (RFC 2544 binary search on rate).
    #[arg(long)]
    pub rfc2544: bool,
    /// RFC 2544: number of trials.
    #[arg(long)]
    pub trials: Option<u32>,
    /// RFC 2544: seconds per trial.
    #[arg(long)]
    pub trial_s: Option<f64>,
    /// RFC 2544: highest rate searched (pps).
    #[arg(long)]
    pub max_pps: Option<f64>,
    /// RFC 2544: loss accepted as zero, in percent.
    #[arg(long)]
    pub loss_tolerance_pct: Option<f64>,
    /// Write the report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// No live line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Extra EAL arguments, after `--`.
    #[arg(last = true, value_name = "EXTRA_EAL_ARGS")]
    pub eal: Vec<String>,
}

/// A configuration problem: exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// A config for flag-only use: ports `tx` (and `rx`) on the given devices.
fn synth_config(a: &GenArgs) -> Result<Config, UsageError> {
    let tx = a
        .tx_dev
        .as_ref()
        .ok_or_else(|| UsageError("give --config FILE or --tx-dev DEVARGS".into()))?;
    let eal: Vec<String> = a.eal_args.split_whitespace().map(str::to_string).collect();
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let eal_list: Vec<String> = eal.iter().map(|s| q(s)).collect();
    let mut text = format!(
        "[eal]\nargs = [{}]\n[dataplane]\nworkers = [{}]\n[[port]]\nname = \"tx\"\nrole = \"outside\"\ndevice = {}\naddress = \"198.18.0.1/24\"\n",
        eal_list.join(", "),
        a.core,
        q(tx)
    );
    if let Some(rx) = &a.rx_dev {
        if rx != tx {
            text += &format!(
                "[[port]]\nname = \"rx\"\nrole = \"inside\"\ndevice = {}\naddress = \"198.18.1.1/24\"\n",
                q(rx)
            );
        }
    }
    Config::from_str_named(&text, "<flags>").map_err(|e| UsageError(e.to_string()))
}

/// The effective generator settings: the config's section (or defaults) with the flags applied, validated.
pub fn effective(cfg: &Config, a: &GenArgs) -> Result<GeneratorCfg, UsageError> {
    let mut g = cfg.generator.clone().unwrap_or_default();
    if a.config.is_none() && a.tx_dev.is_some() {
        g.tx_port.get_or_insert_with(|| "tx".into());
        if let Some(rx) = &a.rx_dev {
            let same = a.tx_dev.as_deref() == Some(rx.as_str());
            g.rx_port = Some(if same { "tx" } else { "rx" }.into());
        }
    }
    let bad = |f: &str, e: String| UsageError(format!("--{f}: {e}"));
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f.clone() { g.$f = v.into(); } )* };
    }
    set!(tx_port, rx_port, rate_pps, rate_gbps, duration_s, count, inner_src, inner_dst);
    set!(outer_src, outer_dst, tunnels, flows, key, burst, drain_ms, udp_sport, udp_dport);
    set!(sequence_start);
    if a.rate_pps.is_some() {
        g.rate_gbps = None;
    }
    if a.rate_gbps.is_some() {
        g.rate_pps = None;
    }
    if a.count.is_some() && a.duration_s.is_none() {
        g.duration_s = None;
    }
    if !a.size.is_empty() {
        g.sizes = a.size.clone();
        g.imix = false;
    }
    g.imix |= a.imix;
    g.checksum |= a.checksum;
    g.sequence |= a.sequence;
    if let Some(e) = &a.encap {
        g.encap = match e.as_str() {
            "udp" => GenEncap::Udp,
            "gre" => GenEncap::Gre,
            _ => return Err(bad("encap", format!("{e:?} is not udp or gre"))),
        };
    }
    for (f, src, dst) in [
        ("src-mac", &a.src_mac, &mut g.src_mac),
        ("dst-mac", &a.dst_mac, &mut g.dst_mac),
    ] {
        if let Some(s) = src {
            *dst = Some(s.parse::<MacAddr>().map_err(|e| bad(f, e.to_string()))?);
        }
    }
    if let Some(t) = a.trials {
        g.rfc2544.trials = t;
    }
    if let Some(t) = a.trial_s {
        g.rfc2544.trial_s = t;
    }
    if a.max_pps.is_some() {
        g.rfc2544.max_pps = a.max_pps;
    }
    if let Some(t) = a.loss_tolerance_pct {
        g.rfc2544.loss_tolerance_pct = t;
    }
    if g.tx_port.is_none() {
        g.tx_port = cfg.ports.first().map(|p| p.name.clone());
    }
    if g.duration_s.is_none() && g.count.is_none() {
        g.duration_s = Some(1.0);
    }
    check_generator(cfg, &g).map_err(UsageError)?;
    Ok(g)
}

/// `greway gen`: exit 0 when the run completed, 1 on a runtime failure, 2 on a configuration error.
pub fn main(a: GenArgs) -> ExitCode {
    let cfg = match &a.config {
        Some(p) => Config::load(p).map_err(|e| UsageError(e.to_string())),
        None => synth_config(&a),
    };
    let (cfg, g) = match cfg.and_then(|c| effective(&c, &a).map(|g| (c, g))) {
        Ok(x) => x,
        Err(UsageError(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let live = !a.quiet && std::io::stdout().is_terminal();
    match run(&cfg, &g, &a, live) {
        Ok(report) => {
            print_report(&report);
            if let Some(p) = &a.report_json {
                let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
                if let Err(e) = std::fs::write(p, text) {
                    eprintln!("error: {}: {e}", p.display());
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// What the run needs, shared by every trial.
struct Env {
    plan: Arc<Plan>,
    pool: Arc<Mempool>,
    tx_port: u16,
    /// (port id, rx queues).
    rx: Option<(u16, u16)>,
    burst: usize,
    drain: Duration,
    core: u32,
    hz: u64,
    live: bool,
    stop: Arc<AtomicBool>,
    /// GRE sequence numbers per tunnel, carried from one trial to the next (RFC 2890 receivers keep state).
    gre_seq: std::sync::Mutex<Vec<u32>>,
}

/// One transmit/receive run.
struct Trial {
    rate_pps: Option<f64>,
    duration: Option<Duration>,
    count: Option<u64>,
    run: u8,
}

/// Raw results of one trial.
struct Outcome {
    sent: u64,
    tx_bytes: u64,
    tx_s: f64,
    received: u64,
    rx_bytes: u64,
    reordered: u64,
    duplicates: u64,
    stale: u64,
    foreign: u64,
    latency_ns: Histogram<u64>,
}

/// The report (`--report-json`).
#[derive(Debug, Serialize)]
pub struct GenReport {
    pub profile: String,
    pub tx_port: String,
    pub rx_port: Option<String>,
    /// Target rate (pps); none = as fast as possible.
    pub target_pps: Option<f64>,
    pub mean_frame_bytes: f64,
    #[serde(flatten)]
    pub result: RunResult,
    pub rfc2544: Option<Rfc2544Report>,
}

/// Counters and rates of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub duration_s: f64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub reordered: u64,
    pub duplicates: u64,
    /// Packets of an earlier run (trial) that arrived late.
    pub stale: u64,
    /// Received frames without a generator signature (ARP, keepalives, ...).
    pub foreign: u64,
    pub tx_mpps: f64,
    pub tx_gbps: f64,
    pub tx_gbps_wire: f64,
    pub rx_mpps: f64,
    pub rx_gbps: f64,
    pub rx_gbps_wire: f64,
    pub latency: LatencySummary,
}

/// RFC 2544 throughput search.
#[derive(Debug, Serialize)]
pub struct Rfc2544Report {
    /// Highest offered rate with loss within tolerance (pps), none if even the lowest failed.
    pub throughput_pps: Option<f64>,
    pub throughput_gbps_wire: Option<f64>,
    pub loss_tolerance_pct: f64,
    pub trials: Vec<Rfc2544Trial>,
}

#[derive(Debug, Serialize)]
pub struct Rfc2544Trial {
    pub offered_pps: f64,
    pub passed: bool,
    /// The generator sent less than 95 % of the offered rate (the trial fails: the tester was the limit).
    pub generator_limited: bool,
    #[serde(flatten)]
    pub result: RunResult,
}

fn result_of(o: &Outcome, measured: bool) -> RunResult {
    let unique = o.received - o.duplicates;
    let lost = if measured {
        o.sent.saturating_sub(unique)
    } else {
        0
    };
    let d = o.tx_s.max(1e-9);
    let gbps = |bytes: u64| bytes as f64 * 8.0 / d / 1e9;
    RunResult {
        duration_s: o.tx_s,
        sent: o.sent,
        received: o.received,
        lost,
        loss_pct: if o.sent > 0 {
            lost as f64 * 100.0 / o.sent as f64
        } else {
            0.0
        },
        reordered: o.reordered,
        duplicates: o.duplicates,
        stale: o.stale,
        foreign: o.foreign,
        tx_mpps: o.sent as f64 / d / 1e6,
        tx_gbps: gbps(o.tx_bytes),
        tx_gbps_wire: gbps(o.tx_bytes + WIRE_OVERHEAD * o.sent),
        rx_mpps: o.received as f64 / d / 1e6,
        rx_gbps: gbps(o.rx_bytes),
        rx_gbps_wire: gbps(o.rx_bytes + WIRE_OVERHEAD * o.received),
        latency: LatencySummary::of(&o.latency_ns),
    }
}

/// Start EAL and the ports, build the templates, run (one run or the RFC 2544 search), stop.
pub fn run(cfg: &Config, g: &GeneratorCfg, a: &GenArgs, live: bool) -> anyhow::Result<GenReport> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let tx_name = g.tx_port.clone().unwrap_or_default();
    let tx_idx = cfg
        .port_index(&tx_name)
        .ok_or_else(|| anyhow::anyhow!("no port {tx_name}"))?;
    let rx_idx = g.rx_port.as_deref().and_then(|n| cfg.port_index(n));
    let rt = Runtime::start(cfg, &a.eal)?;
    // Like a hardware tester, start only once the links are up (memif and real NICs take a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in std::iter::once(tx_idx).chain(rx_idx) {
        let p = &rt.ports[i];
        while !p.link().map(|l| l.up).unwrap_or(true) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        match p.link() {
            Ok(l) if l.up => log::info!("port {}: link up, {} Mbit/s", p.name(), l.speed_mbps),
            _ => log::warn!(
                "port {}: link still down after 10 s; sending anyway",
                p.name()
            ),
        }
    }
    let src_mac = g.src_mac.map_or(rt.macs[tx_idx], |m| m.0);
    let dst_mac = g.dst_mac.map_or([2, 0, 0, 0, 0, 2], |m| m.0);
    let plan = Plan::new(g, src_mac, dst_mac);
    if plan
        .sizes
        .first()
        .is_some_and(|&s| g.sizes.iter().any(|&x| x < s))
        || (g.imix && plan.min_frame > 64)
    {
        log::warn!(
            "frames smaller than {} B cannot hold the headers and the signature: raised to {} B",
            plan.min_frame,
            plan.min_frame
        );
    }
    log::info!("profile: {}", plan.profile);
    let env = Env {
        plan: Arc::new(plan),
        pool: rt.pool.clone(),
        tx_port: rt.ports[tx_idx].id().0,
        rx: rx_idx.map(|i| (rt.ports[i].id().0, rt.ports[i].rx_queues())),
        burst: usize::from(g.burst),
        drain: Duration::from_millis(u64::from(g.drain_ms)),
        core: cfg.dataplane.workers[0],
        hz: dpdk::tsc_hz(),
        live,
        stop: stop.clone(),
        gre_seq: std::sync::Mutex::new(vec![g.sequence_start; g.tunnels as usize]),
    };
    let target_pps = g.rate_pps.or(g
        .rate_gbps
        .map(|gb| gb * 1e9 / 8.0 / (env.plan.mean_frame + WIRE_OVERHEAD as f64)));
    let measured = env.rx.is_some();
    let mut report = GenReport {
        profile: env.plan.profile.clone(),
        tx_port: tx_name,
        rx_port: g.rx_port.clone(),
        target_pps,
        mean_frame_bytes: env.plan.mean_frame,
        result: result_of(&empty_outcome(), measured),
        rfc2544: None,
    };
    if a.rfc2544 {
        anyhow::ensure!(measured, "--rfc2544 needs a receive port (rx_port)");
        let r = &g.rfc2544;
        let max = r.max_pps.or(target_pps).unwrap_or(10e6);
        let mut search = rfc2544::Search::new(max);
        let mut trials = Vec::new();
        for i in 0..r.trials {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let rate = search.rate();
            let o = run_trial(
                &env,
                &Trial {
                    rate_pps: Some(rate),
                    duration: Some(Duration::from_secs_f64(r.trial_s)),
                    count: None,
                    run: (i + 1) as u8,
                },
            );
            let res = result_of(&o, true);
            // A trial counts only if the generator really offered the rate: otherwise the tester, not the
            // device, is the limit, and the search goes down.
            let offered = res.sent as f64 / r.trial_s;
            let generator_limited = offered < rate * 0.95;
            let passed = res.sent > 0 && res.loss_pct <= r.loss_tolerance_pct && !generator_limited;
            println!(
                "rfc2544 trial {}/{}: offered {:.3} Mpps, sent {} received {} lost {} ({:.4} %): {}",
                i + 1,
                r.trials,
                rate / 1e6,
                res.sent,
                res.received,
                res.lost,
                res.loss_pct,
                if passed {
                    "pass"
                } else if generator_limited {
                    "FAIL (generator could not offer the rate)"
                } else {
                    "FAIL"
                }
            );
            report.result = res.clone();
            trials.push(Rfc2544Trial {
                offered_pps: rate,
                passed,
                generator_limited,
                result: res,
            });
            if !search.record(passed) {
                break;
            }
        }
        let best = search.best();
        if let Some(b) = trials
            .iter()
            .filter(|t| t.passed)
            .max_by(|x, y| x.offered_pps.total_cmp(&y.offered_pps))
        {
            report.result = b.result.clone();
        }
        report.rfc2544 = Some(Rfc2544Report {
            throughput_pps: best,
            throughput_gbps_wire: best
                .map(|b| b * (env.plan.mean_frame + WIRE_OVERHEAD as f64) * 8.0 / 1e9),
            loss_tolerance_pct: r.loss_tolerance_pct,
            trials,
        });
    } else {
        let o = run_trial(
            &env,
            &Trial {
                rate_pps: target_pps,
                duration: g.duration_s.map(Duration::from_secs_f64),
                count: g.count,
                run: 0,
            },
        );
        report.result = result_of(&o, measured);
    }
    drop(env);
    drop(rt);
    app::remove_runtime_dir(cfg, &a.eal);
    Ok(report)
}

fn empty_outcome() -> Outcome {
    Outcome {
        sent: 0,
        tx_bytes: 0,
        tx_s: 0.0,
        received: 0,
        rx_bytes: 0,
        reordered: 0,
        duplicates: 0,
        stale: 0,
        foreign: 0,
        latency_ns: new_latency_histogram(),
    }
}

/// What the transmit thread returns.
struct TxDone {
    gre_seq: Vec<u32>,
    sent: u64,
    bytes: u64,
    secs: f64,
}

/// What the transmit thread works with.
struct TxSetup {
    plan: Arc<Plan>,
    pool: Arc<Mempool>,
    port: u16,
    burst_max: usize,
    hz: u64,
    stop: Arc<AtomicBool>,
    live_sent: Arc<AtomicU64>,
    gre_seq: Vec<u32>,
}

/// The transmit loop: paced by TSC, `burst` packets at most per `tx_burst`.
fn transmit(x: &TxSetup, t: &Trial) -> TxDone {
    let (plan, pool, port, burst_max, hz) = (&*x.plan, &*x.pool, x.port, x.burst_max, x.hz);
    let (stop, live_sent) = (&*x.stop, &*x.live_sent);
    let mut seq = vec![0u64; plan.streams as usize];
    let mut gre_seq = x.gre_seq.clone();
    let (mut stream, mut pat) = (0u32, 0usize);
    let mut burst: Burst<256> = Burst::new();
    let (mut sent, mut bytes) = (0u64, 0u64);
    let start = dpdk::rdtsc();
    let end = t
        .duration
        .map(|d| start + (d.as_secs_f64() * hz as f64) as u64);
    let pps_per_tick = t.rate_pps.map(|r| r / hz as f64);
    let mut last_tx = start;
    'outer: loop {
        // Relaxed: a stop request only needs to be seen eventually.
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = dpdk::rdtsc();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        let mut want = burst_max as u64;
        if let Some(c) = t.count {
            want = want.min(c - sent);
            if want == 0 {
                break;
            }
        }
        if let Some(k) = pps_per_tick {
            let due = ((now - start) as f64 * k) as u64 + 1;
            want = want.min(due.saturating_sub(sent));
            if want == 0 {
                // At low rates, give the core back (it may be shared with the device under test): sleep for
                // half the time to the next packet when that is over 200 us, spin otherwise.
                let next_due = start + ((sent as f64) / k) as u64;
                let wait_us = next_due.saturating_sub(now) * 1_000_000 / hz;
                if wait_us > 200 {
                    std::thread::sleep(Duration::from_micros(wait_us / 2));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
        }
        // One bulk allocation per burst (the burst is empty here); a pool too short for it gives one mbuf.
        if !pool.alloc_bulk(&mut burst, want as usize) {
            if let Some(m) = pool.alloc() {
                let _ = burst.push(m);
            }
        }
        for i in 0..burst.len() {
            let tp = plan.template(stream, plan.pattern[pat]);
            let Some(buf) = burst.get_mut(i).append(tp.bytes.len()) else {
                burst.truncate(i);
                break;
            };
            buf.copy_from_slice(&tp.bytes);
            let s = &mut seq[stream as usize];
            let gs = &mut gre_seq[tp.tunnel as usize];
            tp.stamp(buf, t.run, *s, now, *gs);
            *s += 1;
            *gs = gs.wrapping_add(1);
            stream += 1;
            if stream == plan.streams {
                stream = 0;
            }
            pat += 1;
            if pat == plan.pattern.len() {
                pat = 0;
            }
        }
        // Retry what the queue refused until it is taken or the run ends.
        while !burst.is_empty() {
            let before = burst.total_len();
            let n = burst.tx(port, 0);
            sent += n as u64;
            bytes += (before - burst.total_len() + FCS * n) as u64;
            if stop.load(Ordering::Relaxed) || end.is_some_and(|e| dpdk::rdtsc() >= e) {
                burst.free_all();
                break 'outer;
            }
        }
        last_tx = dpdk::rdtsc();
        // Relaxed: a statistic for the live line.
        live_sent.store(sent, Ordering::Relaxed);
    }
    live_sent.store(sent, Ordering::Relaxed);
    TxDone {
        gre_seq,
        sent,
        bytes,
        secs: (last_tx.max(start + 1) - start) as f64 / hz as f64,
    }
}

fn run_trial(env: &Env, t: &Trial) -> Outcome {
    let live_sent = Arc::new(AtomicU64::new(0));
    let tx_stop = Arc::new(AtomicBool::new(false));
    // The transmitter starts after the receive loop's first poll: a receive queue may be armed only by it
    // (net_memif: the server can send nothing to this client before its first rx_burst hands the ring's
    // slots over), and what is sent before that is dropped on the way back (the 1-in-5000 memif loss).
    let mut start_tx = Some({
        let x = TxSetup {
            plan: env.plan.clone(),
            pool: env.pool.clone(),
            port: env.tx_port,
            burst_max: env.burst,
            hz: env.hz,
            stop: tx_stop.clone(),
            live_sent: live_sent.clone(),
            gre_seq: env.gre_seq.lock().map(|v| v.clone()).unwrap_or_default(),
        };
        let core = env.core;
        let trial = Trial { ..*t };
        move || {
            dpdk::spawn_pinned("gen tx", core, move || transmit(&x, &trial))
                .expect("start the transmit task")
        }
    });
    let mut handle: Option<dpdk::PinnedTask<TxDone>> = None;
    let mut o = empty_outcome();
    let mut streams = vec![rx::StreamRx::default(); env.plan.streams as usize];
    let mut b: Burst<64> = Burst::new();
    let started = Instant::now();
    let mut next_live = started + Duration::from_secs(1);
    let mut last_live = (0u64, 0u64, started);
    let mut drain_until: Option<Instant> = None;
    let ns_per_tick = 1e9 / env.hz as f64;
    loop {
        if env.stop.load(Ordering::Relaxed) {
            tx_stop.store(true, Ordering::Relaxed);
        }
        if drain_until.is_none() && handle.as_ref().is_some_and(|h| h.is_finished()) {
            drain_until = Some(
                Instant::now()
                    + if env.rx.is_some() {
                        env.drain
                    } else {
                        Duration::ZERO
                    },
            );
        }
        if drain_until.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match env.rx {
            Some((port, nq)) => {
                let mut got = 0;
                for q in 0..nq {
                    let n = b.rx(port, q);
                    got += n;
                    let now = dpdk::rdtsc();
                    for i in 0..n {
                        let m = b.get_mut(i);
                        let Some(sig) = find_signature(m.data()) else {
                            o.foreign += 1;
                            continue;
                        };
                        if sig.run != t.run {
                            o.stale += 1;
                            continue;
                        }
                        let Some(st) = streams.get_mut(sig.stream as usize) else {
                            o.foreign += 1;
                            continue;
                        };
                        o.rx_bytes += (m.pkt_len() + FCS) as u64;
                        if st.on_seq(sig.seq) != rx::Arrival::Duplicate {
                            let ticks = now.wrapping_sub(sig.tsc) & template::MASK48;
                            let ns = (ticks as f64 * ns_per_tick) as u64;
                            o.latency_ns.saturating_record(ns.max(1));
                        }
                    }
                    b.free_all();
                }
                if got == 0 {
                    std::hint::spin_loop();
                }
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
        if let Some(start) = start_tx.take() {
            handle = Some(start());
        }
        if env.live && Instant::now() >= next_live {
            let now = Instant::now();
            next_live += Duration::from_secs(1);
            let tot = rx::totals(&streams);
            let sent = live_sent.load(Ordering::Relaxed);
            let dt = now.duration_since(last_live.2).as_secs_f64().max(1e-9);
            let lat = LatencySummary::of(&o.latency_ns);
            println!(
                "gen: tx {:.3} Mpps ({} total) | rx {:.3} Mpps ({} total) | reordered {} dup {} | p50 {:.1} us p99 {:.1} us",
                (sent - last_live.0) as f64 / dt / 1e6,
                sent,
                (tot.received - last_live.1) as f64 / dt / 1e6,
                tot.received,
                tot.reordered,
                tot.duplicates,
                lat.p50_us,
                lat.p99_us
            );
            last_live = (sent, tot.received, now);
        }
    }
    let done = handle
        .expect("the transmit task starts in the first iteration")
        .join()
        .expect("transmit task panicked");
    if let Ok(mut v) = env.gre_seq.lock() {
        *v = done.gre_seq;
    }
    let tot = rx::totals(&streams);
    o.sent = done.sent;
    o.tx_bytes = done.bytes;
    o.tx_s = done.secs;
    o.received = tot.received;
    o.reordered = tot.reordered;
    o.duplicates = tot.duplicates;
    o
}

/// The human report.
pub fn print_report(r: &GenReport) {
    let x = &r.result;
    println!("greway gen: {}", r.profile);
    println!(
        "  tx port {} -> rx port {}, target {}, mean frame {:.1} B",
        r.tx_port,
        r.rx_port.as_deref().unwrap_or("(none)"),
        r.target_pps
            .map_or("max".to_string(), |p| format!("{:.3} Mpps", p / 1e6)),
        r.mean_frame_bytes
    );
    println!(
        "  sent {} received {} lost {} ({:.4} %) reordered {} duplicates {} stale {} foreign {}",
        x.sent, x.received, x.lost, x.loss_pct, x.reordered, x.duplicates, x.stale, x.foreign
    );
    println!(
        "  tx {:.3} Mpps {:.3} Gbit/s ({:.3} Gbit/s on the wire) | rx {:.3} Mpps {:.3} Gbit/s ({:.3} on the wire) over {:.3} s",
        x.tx_mpps, x.tx_gbps, x.tx_gbps_wire, x.rx_mpps, x.rx_gbps, x.rx_gbps_wire, x.duration_s
    );
    if x.latency.count > 0 {
        println!(
            "  latency: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us ({} samples)",
            x.latency.p50_us,
            x.latency.p99_us,
            x.latency.p999_us,
            x.latency.max_us,
            x.latency.count
        );
    }
    if let Some(rf) = &r.rfc2544 {
        match rf.throughput_pps {
            Some(p) => println!(
                "  RFC 2544 throughput at {} % loss: {:.3} Mpps ({:.3} Gbit/s on the wire) after {} trials",
                rf.loss_tolerance_pct,
                p / 1e6,
                rf.throughput_gbps_wire.unwrap_or(0.0),
                rf.trials.len()
            ),
            None => println!("  RFC 2544: no trial passed ({} trials)", rf.trials.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
[eal]
args = ["-l", "0-1"]
[dataplane]
workers = [1]
[[port]]
name = "a"
role = "outside"
device = "net_null0"
address = "192.0.2.2/24"
[[port]]
name = "b"
role = "inside"
device = "net_null1"
address = "10.0.0.2/24"
[generator]
rx_port = "b"
encap = "gre"
rate_gbps = 1.0
sizes = [64, 1518]
"#;

    #[test]
    fn flags_override_the_section_and_are_validated() {
        let cfg = Config::from_str_named(CFG, "g.toml").unwrap();
        let g = effective(&cfg, &GenArgs::default()).unwrap();
        assert_eq!(g.tx_port.as_deref(), Some("a"), "first port by default");
        assert_eq!(g.duration_s, Some(1.0));
        let a = GenArgs {
            rate_pps: Some(1000.0),
            count: Some(10),
            size: vec![128],
            key: Some(5),
            ..GenArgs::default()
        };
        let g = effective(&cfg, &a).unwrap();
        assert_eq!((g.rate_pps, g.rate_gbps), (Some(1000.0), None));
        assert_eq!((g.count, g.duration_s), (Some(10), None));
        assert_eq!((g.sizes.clone(), g.key), (vec![128], Some(5)));
        let bad = GenArgs {
            tunnels: Some(2),
            encap: Some("udp".into()),
            ..GenArgs::default()
        };
        let e = effective(&cfg, &bad).unwrap_err().0;
        assert!(e.starts_with("generator.tunnels:"), "{e}");
        let bad = GenArgs {
            rx_port: Some("zz".into()),
            ..GenArgs::default()
        };
        assert!(effective(&cfg, &bad)
            .unwrap_err()
            .0
            .contains("unknown port \"zz\""));
    }

    #[test]
    fn section_errors_have_line_and_field() {
        for (bad, field) in [
            ("sizes = [63]", "generator.sizes[0]"),
            ("rate_pps = -1.0", "generator.rate_pps"),
            ("rfc2544 = { trials = 0 }", "generator.rfc2544.trials"),
            ("flows = 0", "generator.flows"),
            ("inner_dst = \"2001:db8::1\"", "generator.inner_dst"),
            ("colour = 1", "generator.colour"),
        ] {
            let text = CFG.replace("sizes = [64, 1518]", bad);
            let e = Config::from_str_named(&text, "g.toml").unwrap_err();
            assert_eq!(e.field(), field, "{e}");
            assert_eq!(e.line(), Some(20), "{e}");
        }
    }

    #[test]
    fn flag_only_config_has_tx_and_rx_ports() {
        let a = GenArgs {
            tx_dev: Some("net_ring0".into()),
            rx_dev: Some("net_ring0".into()),
            eal_args: "-l 0-1 --no-huge".into(),
            core: 1,
            ..GenArgs::default()
        };
        let cfg = synth_config(&a).unwrap();
        assert_eq!(cfg.ports.len(), 1);
        let g = effective(&cfg, &a).unwrap();
        assert_eq!(
            (g.tx_port.as_deref(), g.rx_port.as_deref()),
            (Some("tx"), Some("tx"))
        );
    }
}
