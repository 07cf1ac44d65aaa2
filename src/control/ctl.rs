//! `greway ctl`: runtime changes and queries over a unix socket (`[control] socket = "PATH"`, mode 0600).
//!
//! Protocol: one JSON [`Request`] per line in, one JSON [`Response`] per line out, any number per connection.
//! The socket thread answers `stats` from the published [`Status`]; everything else goes to the control loop
//! (the only owner of the control plane) through a channel, and the answer comes back the same way. Changes
//! are validated like the configuration file before they reach the control plane: a tunnel to add is a
//! `[[tunnel]]` table (the configuration's own [`TunnelCfg`], so every key of the file is accepted here too).
use super::status::Status;
use crate::config::TunnelCfg;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// `tunnel`: a `[[tunnel]]` table as JSON, every key of the file accepted (unknown keys refused); checked by
    /// the control loop with the file's rules.
    TunnelAdd {
        tunnel: TunnelCfg,
    },
    TunnelDel {
        name: String,
    },
    TunnelShow,
    /// With `tunnel`: an inner prefix routed into that tunnel. With `port`: an underlay route out of it
    /// (directly connected, or `via` a next hop). With `via` alone: into the tunnel whose subnet holds `via`.
    RouteAdd {
        prefix: String,
        #[serde(default)]
        tunnel: Option<String>,
        #[serde(default)]
        port: Option<String>,
        #[serde(default)]
        via: Option<String>,
        /// Answer without data (for feeders changing many routes: the tunnel list grows with the routes).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        quiet: bool,
    },
    RouteDel {
        prefix: String,
        /// As for `route_add`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        quiet: bool,
    },
    RouteShow,
    /// Every bridge, or the one named, with its MAC table.
    BridgeShow {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Read the configuration file the gateway was started with again and apply the difference (`SIGHUP` does
    /// the same): the answer lists what was added, changed and removed per section, or why nothing was.
    Reload,
    Stats,
    /// The `[[mirror]]` entries (ERSPAN sessions' sources) with their counters, from the live status.
    MirrorShow,
}

/// One answer: `ok` with optional `data`, or an `error` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Response {
    pub fn ok(data: Option<serde_json::Value>) -> Self {
        Response {
            ok: true,
            error: None,
            data,
        }
    }
    pub fn err(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            data: None,
        }
    }
}

/// A request waiting for the control loop, with the way back.
pub type Pending = (Request, Sender<Response>);

/// The socket side: a thread accepting connections. Dropping it stops the thread and removes the socket.
pub struct CtlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CtlServer {
    /// Bind `path` (a stale socket file is replaced), make it 0600, and serve. Requests other than `stats` are
    /// sent to the returned receiver, which the control loop drains.
    pub fn start(
        path: &Path,
        status: Arc<ArcSwap<Status>>,
    ) -> std::io::Result<(CtlServer, Receiver<Pending>)> {
        if path.exists() {
            // Only replace a dead socket (a leftover of a previous run): never another kind of file, and never
            // the socket of a gateway that is still running.
            use std::os::unix::fs::FileTypeExt;
            if std::fs::metadata(path)?.file_type().is_socket() {
                if UnixStream::connect(path).is_ok() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        "another greway is listening on it",
                    ));
                }
                std::fs::remove_file(path)?;
            }
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("greway-ctl".into())
            .spawn(move || accept_loop(listener, status, tx, stop2))?;
        Ok((
            CtlServer {
                path: path.to_path_buf(),
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        // Relaxed: the flag carries no data; the accept loop polls it every 50 ms.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;

fn accept_loop(
    listener: UnixListener,
    status: Arc<ArcSwap<Status>>,
    tx: Sender<Pending>,
    stop: Arc<AtomicBool>,
) {
    // One thread per connection: an operator's `greway ctl` is answered while a feeder holds a connection open.
    let live = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        // Relaxed: a bound on threads, no data published through it.
        if live.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match listener.accept() {
            Ok((s, _)) => {
                let (status, tx, stop, live2) =
                    (status.clone(), tx.clone(), stop.clone(), live.clone());
                live.fetch_add(1, Ordering::Relaxed);
                let spawned = std::thread::Builder::new()
                    .name("greway-ctl-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve(s, &status, &tx, &stop) {
                            log::debug!("ctl connection: {e}");
                        }
                        live2.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Err(e) = spawned {
                    live.fetch_sub(1, Ordering::Relaxed);
                    log::warn!("ctl: no thread for a connection: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                log::warn!("ctl accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// An answer in the making: ready, or coming from the control loop.
enum Answer {
    Ready(Response),
    Waiting(Receiver<Response>),
}

impl Answer {
    fn wait(self) -> Response {
        match self {
            Answer::Ready(r) => r,
            Answer::Waiting(rx) => rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| Response::err("no answer from the control loop")),
        }
    }
}

/// Serve one connection. Requests are pipelined: every request already received is handed to the control loop
/// before the oldest answer is awaited, so a client that sends many requests without waiting (a routing feeder)
/// keeps the control loop busy; answers go back in request order.
fn serve(
    s: UnixStream,
    status: &Arc<ArcSwap<Status>>,
    tx: &Sender<Pending>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut pending: VecDeque<Answer> = VecDeque::new();
    let mut line = String::new();
    loop {
        // Answer what is due before blocking on the socket for more.
        if r.buffer().is_empty() {
            while let Some(a) = pending.pop_front() {
                write_answer(&mut w, &a.wait())?;
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Err(e) => Answer::Ready(Response::err(format!("bad request: {e}"))),
            Ok(Request::Stats) => {
                // In order: the status is read once the changes before it are answered.
                while let Some(a) = pending.pop_front() {
                    write_answer(&mut w, &a.wait())?;
                }
                Answer::Ready(Response::ok(serde_json::to_value(&**status.load()).ok()))
            }
            Ok(Request::MirrorShow) => {
                while let Some(a) = pending.pop_front() {
                    write_answer(&mut w, &a.wait())?;
                }
                let st = status.load();
                Answer::Ready(Response::ok(Some(
                    serde_json::json!({ "mirrors": st.mirrors }),
                )))
            }
            Ok(req) => {
                let (rtx, rrx) = mpsc::channel();
                if tx.send((req, rtx)).is_err() {
                    Answer::Ready(Response::err("gateway is stopping"))
                } else {
                    Answer::Waiting(rrx)
                }
            }
        };
        pending.push_back(answer);
    }
    while let Some(a) = pending.pop_front() {
        write_answer(&mut w, &a.wait())?;
    }
    Ok(())
}

fn write_answer(w: &mut UnixStream, resp: &Response) -> std::io::Result<()> {
    let mut out = serde_json::to_string(resp).unwrap_or_else(|_| "{\"ok\":false}".into());
    out.push('\n');
    w.write_all(out.as_bytes())
}

/// The client side: send one request, wait for its answer.
pub fn call(path: &Path, req: &Request) -> std::io::Result<Response> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut line = serde_json::to_string(req).map_err(std::io::Error::other)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut r = BufReader::new(s);
    let mut ans = String::new();
    r.read_line(&mut ans)?;
    serde_json::from_str(&ans).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_tagged_json() {
        let mut t = TunnelCfg::new(
            "b",
            "192.0.2.1".parse().unwrap(),
            "198.51.100.9".parse().unwrap(),
        );
        t.key = Some(7);
        t.routes = vec!["10.30.0.0/16".parse().unwrap()];
        let r = Request::TunnelAdd { tunnel: t.clone() };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.starts_with("{\"cmd\":\"tunnel_add\""), "{j}");
        assert_eq!(serde_json::from_str::<Request>(&j).unwrap(), r);
        // Every optional key set survives the trip too (JSON nulls of the unset ones read back as unset).
        t.key = None;
        t.ikey = Some(1);
        t.okey = Some(2);
        t.allowed_sources = Some(vec!["10.30.0.0/16".parse().unwrap()]);
        t.reorder = Some(crate::config::ReorderCfg {
            window: 4,
            timeout_ms: 20,
        });
        t.ttl = crate::config::Ttl::Inherit;
        t.tos = crate::config::Tos::Fixed(0xb8);
        t.mtu = Some(1400);
        t.host_if = Some("gre-b".into());
        let r = Request::TunnelAdd { tunnel: t };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&j).unwrap(), r, "{j}");
        // A hand-written request: the file's spellings, keys left out take their defaults.
        let j = r#"{"cmd":"tunnel_add","tunnel":{"name":"c","local":"192.0.2.1","remote":"198.51.100.10",
            "ttl":"inherit","keepalive":{"interval_s":5},"allowed_sources":["10.1.0.0/16"]}}"#;
        let Request::TunnelAdd { tunnel } = serde_json::from_str::<Request>(j).unwrap() else {
            panic!("not a tunnel_add")
        };
        assert_eq!(tunnel.ttl, crate::config::Ttl::Inherit);
        assert_eq!(tunnel.keepalive.unwrap().retries, 3);
        assert_eq!(tunnel.allowed_sources.unwrap().len(), 1);
        assert!(serde_json::from_str::<Request>(
            r#"{"cmd":"tunnel_add","tunnel":{"name":"c","local":"192.0.2.1","remote":"198.51.100.10","colour":1}}"#
        )
        .is_err(), "unknown keys are refused");
        assert_eq!(
            serde_json::from_str::<Request>("{\"cmd\":\"tunnel_del\",\"name\":\"x\"}").unwrap(),
            Request::TunnelDel { name: "x".into() }
        );
    }

    #[test]
    fn server_answers_stats_and_forwards_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let status = Arc::new(ArcSwap::from_pointee(Status {
            workers: 3,
            ..Status::default()
        }));
        let (srv, rx) = CtlServer::start(&path, status).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let st = call(&path, &Request::Stats).unwrap();
        assert!(st.ok);
        assert_eq!(st.data.unwrap()["workers"], 3);
        let loop_side = std::thread::spawn(move || {
            let (req, back) = rx.recv().unwrap();
            assert_eq!(req, Request::TunnelShow);
            back.send(Response::err("nope")).unwrap();
        });
        let r = call(&path, &Request::TunnelShow).unwrap();
        assert_eq!(r.error.as_deref(), Some("nope"));
        loop_side.join().unwrap();
        let second = CtlServer::start(&path, Arc::new(ArcSwap::from_pointee(Status::default())));
        assert!(second.is_err(), "a live socket is not taken over");
        drop(srv);
        assert!(!path.exists());
        // A stale socket file (no listener) is replaced.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let (again, _rx) =
            CtlServer::start(&path, Arc::new(ArcSwap::from_pointee(Status::default()))).unwrap();
        drop(again);
    }

    /// Requests sent without waiting are all handed to the control loop before the first is answered, answers
    /// come back in request order (a `stats` after them too), and a second connection is served meanwhile.
    #[test]
    fn pipelined_requests_are_answered_in_order_while_another_connection_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let status = Arc::new(ArcSwap::from_pointee(Status {
            workers: 2,
            ..Status::default()
        }));
        let (_srv, rx) = CtlServer::start(&path, status).unwrap();
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let reqs: Vec<Request> = (0..3)
            .map(|i| Request::TunnelDel {
                name: format!("t{i}"),
            })
            .chain([Request::Stats])
            .collect();
        let mut text = String::new();
        for q in &reqs {
            text += &serde_json::to_string(q).unwrap();
            text.push('\n');
        }
        s.write_all(text.as_bytes()).unwrap();
        // The control loop sees all three before it answers any.
        let got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        for (i, (q, _)) in got.iter().enumerate() {
            assert_eq!(*q, reqs[i]);
        }
        // Another connection is answered while this one waits.
        let st = call(&path, &Request::Stats).unwrap();
        assert_eq!(st.data.unwrap()["workers"], 2);
        for (i, (_, back)) in got.into_iter().enumerate().rev() {
            back.send(Response::err(format!("answer {i}"))).unwrap();
        }
        let mut r = BufReader::new(s);
        for i in 0..3 {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let a: Response = serde_json::from_str(&line).unwrap();
            assert_eq!(a.error, Some(format!("answer {i}")), "in request order");
        }
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let a: Response = serde_json::from_str(&line).unwrap();
        assert!(a.ok && a.data.unwrap()["workers"] == 2, "stats last");
    }
}
