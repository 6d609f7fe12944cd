//! Other brokers for interop tests, each started privately on its own
//! ephemeral loopback ports and stopped on drop: RabbitMQ with its MQTT
//! plugin (a separate node in a temp dir, its own epmd port) and
//! nats-server with its MQTT listener (JetStream on, as MQTT needs).
//! `start` returns `Err(reason)` when the broker cannot run here; the
//! caller reports it as SKIPPED.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, on_path, temp_dir};

/// Waits until `port` accepts TCP connections, or `child` exits.
fn wait_listening(child: &mut Child, port: u16, limit: Duration, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            return Err(format!("exited with {status} before listening: {tail}"));
        }
        if Instant::now() > deadline {
            return Err(format!("not listening on {port} after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `signal` to `pid` with kill(1).
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// A nats-server with an MQTT listener.
pub struct Nats {
    /// The MQTT port.
    pub port: u16,
    child: Child,
}

impl Nats {
    /// Starts `nats-server` with JetStream and `mqtt { listen }`.
    pub fn start(tag: &str) -> Result<Self, String> {
        if !on_path("nats-server") {
            return Err("nats-server not on PATH".into());
        }
        let dir = temp_dir(tag);
        let (port, client_port) = (free_port(), free_port());
        let config = format!(
            "server_name: umqtt_{tag}\nlisten: 127.0.0.1:{client_port}\njetstream {{ store_dir: \"{}\" }}\nmqtt {{ listen: 127.0.0.1:{port} }}\n",
            dir.join("jetstream").display()
        );
        std::fs::write(dir.join("nats.conf"), config).map_err(|e| e.to_string())?;
        let log = dir.join("nats.log");
        let mut child = Command::new("nats-server")
            .arg("-c")
            .arg(dir.join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("spawn nats-server: {e}"))?;
        if let Err(e) = wait_listening(&mut child, port, Duration::from_secs(20), &log) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(Self { port, child })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private RabbitMQ node with `rabbitmq_mqtt` enabled.
pub struct RabbitMq {
    /// The MQTT port.
    pub port: u16,
    dir: PathBuf,
    epmd_port: u16,
    child: Child,
    /// How long the node took to start.
    pub startup: Duration,
}

const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

impl RabbitMq {
    /// Starts a node named after `tag` and this process, with its own
    /// AMQP, MQTT, distribution and epmd ports, data in a temp dir.
    pub fn start(tag: &str) -> Result<Self, String> {
        Self::start_with(tag, &[], "", &[])
    }

    /// Like [`start`](Self::start), with `plugins` enabled too, `config`
    /// lines added to `rabbitmq.conf`, and once the MQTT port listens,
    /// waiting for the `ports` these lines open as well.
    pub fn start_with(
        tag: &str,
        plugins: &[&str],
        config: &str,
        ports: &[u16],
    ) -> Result<Self, String> {
        if !Path::new(RABBITMQ_SERVER).exists() {
            return Err(format!("{RABBITMQ_SERVER} not installed"));
        }
        if !on_path("erl") {
            return Err("Erlang (erl) not on PATH".into());
        }
        let started = Instant::now();
        let dir = temp_dir(tag);
        let (port, amqp, dist, epmd_port) = (free_port(), free_port(), free_port(), free_port());
        let plugins: String = plugins.iter().map(|p| format!(",{p}")).collect();
        std::fs::write(dir.join("enabled_plugins"), format!("[rabbitmq_mqtt{plugins}].\n"))
            .map_err(|e| e.to_string())?;
        let config = format!(
            "listeners.tcp.default = 127.0.0.1:{amqp}\nmqtt.listeners.tcp.default = 127.0.0.1:{port}\nmqtt.allow_anonymous = true\nloopback_users = none\n{config}"
        );
        std::fs::write(dir.join("rabbitmq.conf"), config).map_err(|e| e.to_string())?;
        let log = dir.join("rabbitmq.out");
        let mut child = Command::new(RABBITMQ_SERVER)
            .current_dir(&dir)
            .env("HOME", &dir)
            .env("RABBITMQ_NODENAME", format!("umqtt_{tag}_{}@localhost", std::process::id()))
            .env("RABBITMQ_NODE_PORT", amqp.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", dir.join("plugins-expand"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .stdout(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn rabbitmq-server: {e}"))?;
        let limit = Duration::from_secs(120);
        let waited = std::iter::once(&port)
            .chain(ports)
            .try_for_each(|&p| wait_listening(&mut child, p, limit, &log));
        let node = Self { port, dir, epmd_port, child, startup: started.elapsed() };
        waited.map(|()| node)
    }

    /// The epmd daemon the node started on its own port (found by its
    /// environment), to stop it with the node.
    fn epmd_pid(&self) -> Option<u32> {
        let wanted = format!("ERL_EPMD_PORT={}", self.epmd_port);
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            // The program itself, not the VM (whose arguments name epmd too).
            let program = cmdline.split(|&b| b == 0).next()?;
            if !program.ends_with(b"/epmd") && program != b"epmd" {
                return None;
            }
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes()).then_some(pid)
        })
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        // The script execs the Erlang VM; its pid file names it too.
        let pid = std::fs::read_to_string(self.dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let epmd = self.epmd_pid();
        match pid {
            Some(pid) => signal(pid, "KILL"),
            None => {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(epmd) = epmd {
            signal(epmd, "TERM");
        }
    }
}
