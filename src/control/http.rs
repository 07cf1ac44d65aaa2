//! The Prometheus endpoint (`[metrics] prometheus = "ADDR:PORT"`): `GET /metrics` answers the text exposition
//! format rendered by the control loop (a string swapped in a few times a second), from a thread of its own.
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A running exporter. Dropping it stops the thread.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Listen on `addr` and serve `text` (the current exposition) on `/metrics`.
    pub fn start(addr: SocketAddr, text: Arc<ArcSwap<String>>) -> std::io::Result<MetricsServer> {
        let server = Arc::new(tiny_http::Server::http(addr).map_err(std::io::Error::other)?);
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("not an IP listener"))?;
        let s = server.clone();
        let thread = std::thread::Builder::new()
            .name("greway-metrics".into())
            .spawn(move || {
                for req in s.incoming_requests() {
                    let path = req.url().split('?').next().unwrap_or("");
                    let resp = match (req.method(), path) {
                        (tiny_http::Method::Get, "/metrics") => {
                            tiny_http::Response::from_string(text.load().as_str()).with_header(
                                header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                            )
                        }
                        (tiny_http::Method::Get, "/") => {
                            tiny_http::Response::from_string("greway: metrics at /metrics\n")
                                .with_header(header("Content-Type", "text/plain; charset=utf-8"))
                        }
                        _ => tiny_http::Response::from_string("not found\n").with_status_code(404),
                    };
                    let _ = req.respond(resp);
                }
            })?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr,
        })
    }

    /// The bound address (the port is the real one when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn header(k: &str, v: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("static header")
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn serves_metrics_and_404() {
        let text = Arc::new(ArcSwap::from_pointee("greway_workers 1\n".to_string()));
        let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), text.clone()).unwrap();
        let get = |path: &str| {
            let mut s = std::net::TcpStream::connect(srv.addr()).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let r = get("/metrics");
        assert!(
            r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"),
            "{r}"
        );
        assert!(r.contains("text/plain; version=0.0.4"));
        assert!(r.ends_with("greway_workers 1\n"));
        text.store(Arc::new("greway_workers 2\n".into()));
        assert!(get("/metrics").ends_with("greway_workers 2\n"));
        assert!(get("/nope").contains(" 404 "));
        drop(srv);
    }
}
