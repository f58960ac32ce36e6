//! Loopback ports for a process the test starts, which binds them itself later.
//!
//! A port found by binding port 0 and letting it go is an ephemeral port: until the
//! process binds it, any outgoing connection on the machine (another test's nats-server
//! dialling its routes, a client) may be given it, and a concurrent test may pick it too.
//! That happened in CI: a node's route port was taken, and two tests' clusters dialled
//! each other. So a reserved port is drawn from below the kernel's ephemeral range, where
//! no connection is given a port unasked, and it is held until the reservation is dropped:
//! within this test process by a set, across processes by a lock on a file named after it
//! (released by the kernel if the test process dies).

use std::collections::HashSet;
use std::fs::File;
use std::net::TcpListener;
use std::sync::Mutex;

/// Where the choice starts when the ephemeral range cannot be read.
const EPHEMERAL_LOW_DEFAULT: u16 = 32768;
/// How far below the ephemeral range ports are chosen.
const SPAN: u16 = 12000;

static HELD: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Ports held for this test until dropped.
pub struct Reserved {
    ports: Vec<u16>,
    _locks: Vec<File>,
}

impl Reserved {
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = held.as_mut() {
            for port in &self.ports {
                held.remove(port);
            }
        }
    }
}

/// `count` distinct loopback ports, free now, below the ephemeral range, and held against
/// every other reservation until the result is dropped.
pub fn reserve(count: usize) -> Reserved {
    let high = ephemeral_low();
    let low = high.saturating_sub(SPAN).max(1024);
    let dir = std::env::temp_dir().join("corridor-test-ports");
    std::fs::create_dir_all(&dir).expect("a directory for the test ports' locks");
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    let held = held.get_or_insert_with(HashSet::new);
    let mut reserved = Reserved { ports: Vec::new(), _locks: Vec::new() };
    let span = high - low;
    let start = std::process::id() as u16
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos() as u16);
    for step in 0..span {
        if reserved.ports.len() == count {
            break;
        }
        let candidate = low + (start.wrapping_add(step) % span);
        if held.contains(&candidate) || TcpListener::bind(("127.0.0.1", candidate)).is_err() {
            continue;
        }
        let lock = File::create(dir.join(format!("{candidate}.lock"))).expect("a test port's lock file");
        if lock.try_lock().is_err() {
            continue;
        }
        held.insert(candidate);
        reserved.ports.push(candidate);
        reserved._locks.push(lock);
    }
    assert_eq!(reserved.ports.len(), count, "no {count} free loopback ports in {low}..{high}");
    reserved
}

/// The lowest port the kernel hands out unasked.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_LOW_DEFAULT)
}
