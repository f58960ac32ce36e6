//! A real NATS JetStream cluster on loopback, from the `nats-server` binary (the rule for
//! outside programs is in [`super::external`]): each node a process with its own store
//! directory and free loopback ports, started, killed (SIGKILL) and restarted by the test.
//! The nodes do not tell clients about each other (`no_advertise`): a client connects only
//! to the addresses it was given, so one given fault proxies never goes round them and a
//! partition made with the proxies holds, as a real one would.
//! Readiness is polled on each node's monitoring `/healthz`, which answers 200 only once
//! the node is in touch with the JetStream meta leader and its streams are current.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{external, ports};

/// How long a node may take to become ready before the test fails.
const READY_WAIT: Duration = Duration::from_secs(60);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(50);
/// The servers' largest message: the log's batches are up to a few MiB.
const MAX_PAYLOAD: &str = "8MB";

/// One node's fixed places: they stay the same across restarts.
struct Node {
    client_port: u16,
    http_port: u16,
    config: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// A cluster of `nats-server` processes; dropping it kills them all (on a failed test too).
pub struct NatsCluster {
    program: PathBuf,
    nodes: Vec<Node>,
    _ports: ports::Reserved,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `n` nodes and waits until each is ready. `None` (after a notice on stderr)
    /// when `nats-server` is missing and nothing requires it.
    pub fn start(n: usize) -> Option<NatsCluster> {
        let test = std::thread::current().name().unwrap_or("a NATS test").to_owned();
        let program = external::NATS_SERVER.require(&test)?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let reserved = ports::reserve(3 * n);
        let ports = reserved.ports();
        // A name of its own: a node of another test's cluster that dialled this one's
        // port would be refused, not joined.
        let name = format!("corridor-test-{}-{}", std::process::id(), ports[0]);
        let (client, cluster, http) = (&ports[..n], &ports[n..2 * n], &ports[2 * n..]);
        let routes: Vec<String> = cluster.iter().map(|port| format!("nats://127.0.0.1:{port}")).collect();
        let nodes = (0..n)
            .map(|i| {
                let store = dir.path().join(format!("n{i}"));
                let config = dir.path().join(format!("n{i}.conf"));
                let text = format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\nmax_payload: {MAX_PAYLOAD}\n\
                     jetstream {{ store_dir: {:?} }}\n\
                     cluster {{ name: {name}, listen: 127.0.0.1:{}, routes: [{}], no_advertise: true }}\n",
                    client[i],
                    http[i],
                    store.display().to_string(),
                    cluster[i],
                    routes.join(", ")
                );
                std::fs::write(&config, text).expect("write a node's configuration");
                Node {
                    client_port: client[i],
                    http_port: http[i],
                    config,
                    log: dir.path().join(format!("n{i}.log")),
                    process: None,
                }
            })
            .collect();
        let mut cluster = NatsCluster { program, nodes, _ports: reserved, _dir: dir };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_ready(i);
        }
        Some(cluster)
    }

    /// The client addresses, "host:port,host:port,...".
    pub fn servers(&self) -> String {
        self.nodes.iter().map(|node| format!("127.0.0.1:{}", node.client_port)).collect::<Vec<_>>().join(",")
    }

    /// Node `i`'s client address alone.
    pub fn server(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// Kills node `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.nodes[i].process.take() {
            process.kill().expect("SIGKILL a nats-server");
            process.wait().expect("reap a nats-server");
        }
    }

    /// Starts node `i` again on the same ports and store directory, and waits until it is
    /// ready (in touch with the meta leader, its streams current).
    pub fn restart(&mut self, i: usize) {
        self.restart_together(&[i]);
    }

    /// Starts the nodes `nodes` again at once (as a quorum returning does), then waits
    /// until each is ready.
    pub fn restart_together(&mut self, nodes: &[usize]) {
        for &i in nodes {
            assert!(self.nodes[i].process.is_none(), "node {i} runs already");
            self.spawn(i);
        }
        for &i in nodes {
            self.wait_ready(i);
        }
    }

    /// Whether node `i` sees `stream` without a quorum: its Raft group has no leader, or
    /// the node leads it and counts none of the other replicas as current.
    pub fn stream_lost_quorum(&self, i: usize, stream: &str) -> bool {
        let Some(detail) = self.stream_detail(i, stream) else { return false };
        let cluster = &detail["cluster"];
        let leader = cluster["leader"].as_str().unwrap_or("");
        let name = format!("n{i}");
        let others =
            cluster["replicas"].as_array().into_iter().flatten().filter(|r| r["name"] != name.as_str());
        leader.is_empty()
            || (leader == name && others.clone().count() > 0 && others.clone().all(|r| r["current"] == false))
    }

    /// The index of the node that leads `stream`'s Raft group, as the running nodes see it.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let live = (0..self.nodes.len()).filter(|&i| self.nodes[i].process.is_some());
        live.filter_map(|i| self.stream_detail(i, stream))
            .find_map(|detail| detail["cluster"]["leader"].as_str().map(str::to_owned))
            .and_then(|name| name.strip_prefix('n')?.parse().ok())
    }

    /// Node `i`'s own copy of `stream`: its `(messages, last sequence)` as that node stores
    /// them (from its monitoring `/jsz`), `None` when it has no copy or does not answer.
    pub fn stream_state(&self, i: usize, stream: &str) -> Option<(u64, u64)> {
        let detail = self.stream_detail(i, stream)?;
        Some((detail["state"]["messages"].as_u64()?, detail["state"]["last_seq"].as_u64()?))
    }

    /// Waits (polling) until `condition` holds, failing the test after `READY_WAIT`.
    pub fn wait_until(&self, what: &str, mut condition: impl FnMut(&NatsCluster) -> bool) {
        let deadline = Instant::now() + READY_WAIT;
        while !condition(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(POLL);
        }
    }

    fn stream_detail(&self, i: usize, stream: &str) -> Option<Value> {
        let (status, body) = http_get(self.nodes[i].http_port, "/jsz?accounts=true&streams=true")?;
        if status != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        let accounts = answer["account_details"].as_array()?;
        accounts
            .iter()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .find(|detail| detail["name"] == stream)
            .cloned()
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(&node.log).expect("a node's log file");
        let process = Command::new(&self.program)
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a node's log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        node.process = Some(process);
    }

    fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if let Some((200, _)) = http_get(self.nodes[i].http_port, "/healthz") {
                return;
            }
            let exited = self.nodes[i].process.as_mut().and_then(|p| p.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(n, node)| format!("n{n}:\n{}", tail(&node.log)))
                    .collect();
                panic!(
                    "nats-server n{i} did not become ready ({exited:?}); the nodes' logs:\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if let Some(mut process) = self.nodes[i].process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
}

/// A plain HTTP GET on loopback: its status and body, `None` when nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The end of a node's log, to show why it failed.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|line| !line.contains("Healthcheck failed")).collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
