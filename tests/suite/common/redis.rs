//! A `redis-server` per test: started on a free port with no persistence,
//! killed (as in a crash) and restarted on the same port. Debian's package,
//! installed by `scripts/install-tools`; the tests fail, never skip, without it.

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A `redis-server` of this test alone, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    args: Vec<String>,
    /// Whether the port speaks TLS only.
    tls: bool,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let mut server = Self {
            port: free_port(),
            args: args.iter().map(|a| a.to_string()).collect(),
            tls: false,
            child: None,
        };
        server.restart();
        server
    }

    /// A server on a TLS-only port, with `cert` and `key` (PEM files).
    pub fn start_tls(cert: &Path, key: &Path) -> Self {
        let port = free_port();
        let mut server = Self {
            port,
            args: ["--port", "0", "--tls-port", &port.to_string()]
                .into_iter()
                .map(str::to_owned)
                .chain(["--tls-cert-file".to_owned(), cert.display().to_string()])
                .chain(["--tls-key-file".to_owned(), key.display().to_string()])
                .chain(["--tls-auth-clients".to_owned(), "no".to_owned()])
                .collect(),
            tls: true,
            child: None,
        };
        server.restart();
        server
    }

    /// A server not started yet, on a port where nothing listens.
    pub fn not_started() -> Self {
        Self {
            port: free_port(),
            args: Vec::new(),
            tls: false,
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(redis_server_binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            // Later arguments win: a TLS server's own `--port 0` among them.
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the server is gone at once, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the port answers `PING` (with `+PONG`, or `-NOAUTH` when a
    /// password is required).
    pub fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls {
            // Listening is enough: the handshake is the test's business.
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_server_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server is not installed (neither on PATH nor in /usr/bin): \
                 run scripts/install-tools, which installs Debian's redis-server"
            )
        })
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}
