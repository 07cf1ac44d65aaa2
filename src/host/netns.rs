//! Network namespaces by name, as `ip netns` keeps them: a bind mount of the namespace on `/run/netns/NAME`.
//! greway enters one from a short-lived thread of its own (a namespace is a per-thread property), so the rest
//! of the process stays where it is.
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Where `ip netns` keeps named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A named network namespace, open.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    file: File,
}

impl Netns {
    /// Open namespace `name`, creating it as `ip netns add` does when it does not exist. A namespace greway
    /// creates stays after it exits (like one made with `ip netns add`), so daemons running in it survive a
    /// restart of greway.
    pub fn open_or_create(name: &str) -> io::Result<Netns> {
        let path = PathBuf::from(NETNS_RUN_DIR).join(name);
        if !path.exists() {
            create(&path)?;
            log::info!("created network namespace {name}");
        }
        let file = File::open(&path)?;
        Ok(Netns {
            name: name.to_string(),
            file,
        })
    }

    /// Run `f` on a thread inside this namespace (sockets and devices it opens belong to the namespace) and
    /// return its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                Ok(f())
            })
            .join()
            .map_err(|_| io::Error::other("namespace thread panicked"))?
        })
    }
}

/// `ip netns add`: make the run directory a shared mount point (so the namespace mounts propagate), create the
/// mount point file, and bind-mount a new namespace (made by a thread that unshares its own) on it.
fn create(path: &Path) -> io::Result<()> {
    let dir = Path::new(NETNS_RUN_DIR);
    std::fs::create_dir_all(dir)?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if let Err(nix::errno::Errno::EINVAL) =
        mount(None::<&str>, dir, Some("none"), shared, None::<&str>)
    {
        // Not a mount point yet: bind it onto itself first (what iproute2 does).
        mount(
            Some(dir),
            dir,
            Some("none"),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )?;
        mount(None::<&str>, dir, Some("none"), shared, None::<&str>)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                path,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
    });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}
