//! CPU over a run's measurement, from Linux's `/proc`: what Corridor's nodes used (per
//! payment, and in cores), and what the rest of the machine used meanwhile, which makes
//! the ratios to the ceilings untrustworthy when it is more than a sliver of a core.
//!
//! A network of its own runs its hub and banks as tasks in this process, so there the
//! figure is this process's own CPU (the load generator's work included). A running
//! network's nodes are found by the loopback ports their URLs name: the process that
//! listens on each one. The arithmetic ([`CpuUse::between`], [`other_cpu_warning`]) and
//! the parsing are pure functions; only [`Measured::sample`] reads files.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc`'s CPU times (Linux's `USER_HZ`, 100 on every
/// platform it runs on).
pub const TICKS_PER_S: f64 = 100.0;
/// Cores other processes may use while a run measures before its ratios are not to be
/// trusted.
pub const OTHER_CORES_MAX: f64 = 0.1;

/// Cumulative CPU ticks at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// The machine's busy time, all cores: user, nice and system (idle, I/O wait,
    /// interrupts and time stolen by the hypervisor are no process's).
    pub machine_busy: u64,
    /// Corridor's nodes' processes, user and system.
    pub corridor: u64,
    /// The load generator's process when it is not one of Corridor's (a running network).
    pub load_generator: u64,
}

/// CPU used over an interval, in cores (seconds of CPU per second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuUse {
    /// By Corridor's nodes.
    pub corridor_cores: f64,
    /// By every other process of the machine (the load generator's own not counted).
    pub other_cores: f64,
}

impl CpuUse {
    /// The CPU used between `start` and `end`, `seconds` apart. Other processes' share is
    /// the machine's busy time less Corridor's and the load generator's, never below 0
    /// (counters read a few microseconds apart can cross by a tick).
    pub fn between(start: CpuTicks, end: CpuTicks, seconds: f64) -> Self {
        assert!(seconds > 0.0, "an interval of {seconds} s");
        let delta = |from: u64, to: u64| to.saturating_sub(from) as f64;
        let machine = delta(start.machine_busy, end.machine_busy);
        let corridor = delta(start.corridor, end.corridor);
        let load_generator = delta(start.load_generator, end.load_generator);
        let cores = |ticks: f64| ticks / TICKS_PER_S / seconds;
        Self {
            corridor_cores: cores(corridor),
            other_cores: cores((machine - corridor - load_generator).max(0.0)),
        }
    }

    /// Microseconds of Corridor's CPU per payment, over `seconds` in which `payments`
    /// completed (`None` for none).
    pub fn us_per_payment(&self, seconds: f64, payments: u64) -> Option<f64> {
        (payments > 0).then(|| self.corridor_cores * seconds * 1e6 / payments as f64)
    }
}

/// The warning a run gives when other processes used more than [`OTHER_CORES_MAX`].
pub fn other_cpu_warning(other_cores: f64) -> Option<String> {
    (other_cores > OTHER_CORES_MAX).then(|| {
        format!(
            "other processes used {other_cores:.2} cores while the run measured (more than \
             {OTHER_CORES_MAX}): the ratios to the ceilings are not to be trusted"
        )
    })
}

/// User plus system ticks of a process, from the text of its `/proc/<pid>/stat`.
pub fn parse_process_ticks(stat: &str) -> Result<u64, String> {
    // The command name is in parentheses and may hold spaces and parentheses itself.
    let (_, rest) = stat.rsplit_once(')').ok_or("no command name in parentheses")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are the line's fields 14 and 15: 12 and 13 after the name.
    let field = |index: usize, name: &str| -> Result<u64, String> {
        let text = fields.get(index).ok_or_else(|| format!("no {name} field"))?;
        text.parse().map_err(|_| format!("{name} is {text:?}, not a count of ticks"))
    };
    Ok(field(11, "utime")? + field(12, "stime")?)
}

/// The machine's busy ticks (user, nice, system), from the text of `/proc/stat`.
pub fn parse_machine_busy_ticks(stat: &str) -> Result<u64, String> {
    let line = stat.lines().find(|l| l.starts_with("cpu ")).ok_or("no \"cpu \" line")?;
    let fields: Vec<&str> = line.split_whitespace().skip(1).take(3).collect();
    if fields.len() < 3 {
        return Err(format!("the cpu line {line:?} has fewer than 3 counts"));
    }
    fields.iter().try_fold(0u64, |sum, text| {
        let ticks: u64 =
            text.parse().map_err(|_| format!("{text:?} in the cpu line is not a count of ticks"))?;
        Ok(sum + ticks)
    })
}

/// The inodes of the TCP sockets listening on `port`, from the text of
/// `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn parse_listening_inodes(table: &str, port: u16) -> Result<Vec<u64>, String> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else {
            return Err(format!("a socket line with fewer than 10 fields: {line:?}"));
        };
        let (_, hex_port) = local.rsplit_once(':').ok_or_else(|| format!("no port in {local:?}"))?;
        let local_port = u16::from_str_radix(hex_port, 16)
            .map_err(|_| format!("{hex_port:?} is not a hexadecimal port"))?;
        if local_port == port && *state == LISTEN {
            inodes.push(inode.parse().map_err(|_| format!("{inode:?} is not an inode"))?);
        }
    }
    Ok(inodes)
}

/// Whose CPU a run counts as Corridor's.
#[derive(Clone, Debug)]
pub enum Measured {
    /// This process: a network of its own, its nodes tasks in it.
    ThisProcess,
    /// A running network's node processes, by process id, each with the nodes it runs.
    Processes(BTreeMap<u32, Vec<String>>),
    /// Nothing can be measured, and why.
    Not(String),
}

impl Measured {
    /// The processes of a running network's nodes (`(name, URL)`), found by the loopback
    /// port each listens on; `Not` with the reason when one cannot be found.
    pub fn find(nodes: &[(String, String)]) -> Self {
        let mut processes: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (name, url) in nodes {
            match process_listening_at(url) {
                Ok(pid) => processes.entry(pid).or_default().push(name.clone()),
                Err(why) => return Self::Not(format!("{name}'s process not found: {why}")),
            }
        }
        Self::Processes(processes)
    }

    /// What the figure is, for the report.
    pub fn describe(&self) -> String {
        match self {
            Self::ThisProcess => "this process: hub, banks and load generator in one".into(),
            Self::Processes(processes) => {
                let each: Vec<String> = processes
                    .iter()
                    .map(|(pid, nodes)| format!("{} (pid {pid})", nodes.join(", ")))
                    .collect();
                format!("the nodes' processes: {}", each.join("; "))
            }
            Self::Not(why) => format!("not measured: {why}"),
        }
    }

    /// The CPU counters now; an error says which file failed and how.
    pub fn sample(&self) -> Result<CpuTicks, String> {
        let machine_busy =
            parse_machine_busy_ticks(&read("/proc/stat")?).map_err(|e| format!("/proc/stat: {e}"))?;
        let this = process_ticks("self")?;
        match self {
            Self::ThisProcess => Ok(CpuTicks { machine_busy, corridor: this, load_generator: 0 }),
            Self::Processes(processes) => {
                let mut corridor = 0;
                for (pid, nodes) in processes {
                    corridor += process_ticks(&pid.to_string())
                        .map_err(|e| format!("{} (pid {pid}): {e}", nodes.join(", ")))?;
                }
                Ok(CpuTicks { machine_busy, corridor, load_generator: this })
            }
            Self::Not(why) => Err(why.clone()),
        }
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn process_ticks(pid: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    parse_process_ticks(&read(&path)?).map_err(|e| format!("{path}: {e}"))
}

/// The process listening on the loopback port of `url` (`https://127.0.0.1:7000`).
fn process_listening_at(url: &str) -> Result<u32, String> {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or_default();
    let (host, port) = authority.rsplit_once(':').ok_or_else(|| format!("no port in {url}"))?;
    let port: u16 = port.parse().map_err(|_| format!("no port in {url}"))?;
    if !matches!(host.trim_matches(['[', ']']), "localhost" | "::1") && !host.starts_with("127.") {
        return Err(format!("{url} is not on this machine's loopback"));
    }
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(parse_listening_inodes(&text, port).map_err(|e| format!("{table}: {e}"))?);
        }
    }
    if inodes.is_empty() {
        return Err(format!("no socket listening on port {port} in /proc/net/tcp"));
    }
    let sockets: Vec<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    owner_of(&sockets)
        .ok_or_else(|| format!("no process of this user holds the socket listening on port {port}"))
}

/// The process that holds one of `sockets` (`socket:[inode]`) open, among those whose
/// descriptors this user may read.
fn owner_of(sockets: &[String]) -> Option<u32> {
    let processes = std::fs::read_dir("/proc").ok()?;
    processes.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let descriptors = std::fs::read_dir(entry.path().join("fd")).ok()?;
        descriptors
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
            })
            .then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(machine_busy: u64, corridor: u64, load_generator: u64) -> CpuTicks {
        CpuTicks { machine_busy, corridor, load_generator }
    }

    /// Issue 21 item 5: the CPU of other processes is the machine's busy time less
    /// Corridor's and the load generator's, in cores over the interval; Corridor's per
    /// payment is its CPU over the payments completed. Over 2 s at 100 ticks/s: the
    /// machine 360 ticks busy (1.8 cores), Corridor 300 (1.5 cores), the load generator 40
    /// (0.2), so others 20 ticks (0.1 core); 1,000 payments at 1.5 cores for 2 s are 3,000
    /// µs each. Counters that cross by a tick give 0, not a negative figure.
    #[test]
    fn jiffies_become_cores_and_cpu_per_payment() {
        let used = CpuUse::between(ticks(1000, 500, 100), ticks(1360, 800, 140), 2.0);
        assert!((used.corridor_cores - 1.5).abs() < 1e-12, "{used:?}");
        assert!((used.other_cores - 0.1).abs() < 1e-12, "{used:?}");
        assert!((used.us_per_payment(2.0, 1000).unwrap() - 3000.0).abs() < 1e-9);
        assert_eq!(used.us_per_payment(2.0, 0), None);
        let crossed = CpuUse::between(ticks(1000, 500, 0), ticks(1100, 601, 0), 1.0);
        assert_eq!(crossed.other_cores, 0.0);
    }

    /// More than a tenth of a core used by others makes the ratios untrustworthy, and
    /// the warning says so; a tenth or less does not warn.
    #[test]
    fn other_processes_above_a_tenth_of_a_core_warn() {
        assert_eq!(other_cpu_warning(0.0), None);
        assert_eq!(other_cpu_warning(0.1), None);
        let warning = other_cpu_warning(0.35).expect("a warning");
        assert!(warning.contains("0.35 cores") && warning.contains("not to be trusted"), "{warning}");
    }

    /// /proc's files are parsed for what they hold, a command name with spaces and
    /// parentheses included; garbage gets an error that says what was wrong, never a
    /// figure of 0.
    #[test]
    fn proc_files_are_parsed_and_garbage_is_refused() {
        let stat = "4242 (tokio (x) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_process_ticks(stat), Ok(325));
        for garbage in
            ["", "4242 tokio S 1", "4242 (x) S 1 2", "4242 (x) S 1 4242 4242 0 -1 0 0 0 0 0 ten 75"]
        {
            let error = parse_process_ticks(garbage).unwrap_err();
            assert!(!error.is_empty(), "{garbage:?}");
        }
        assert!(parse_process_ticks("1 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 75").unwrap_err().contains("utime"));
        let machine = "cpu  1000 20 300 9000 50 0 7 3 0 0\ncpu0 500 10 150 4500 25 0 3 1 0 0\n";
        assert_eq!(parse_machine_busy_ticks(machine), Ok(1320));
        assert!(parse_machine_busy_ticks("cpu0 1 2 3\n").unwrap_err().contains("no \"cpu \" line"));
        assert!(parse_machine_busy_ticks("cpu  1 2\n").unwrap_err().contains("fewer than 3"));
        assert!(parse_machine_busy_ticks("cpu  1 x 3\n").unwrap_err().contains("\"x\""));
    }

    /// A listening socket is found by its port in /proc/net/tcp (hexadecimal, state 0A);
    /// a connected socket on the same port is not it; a malformed table is refused.
    #[test]
    fn listening_sockets_are_found_by_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 31337 1 0 100 0 0 10 0\n\
           1: 0100007F:1B58 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 31338 1 0 20 4 30 10 -1\n";
        assert_eq!(parse_listening_inodes(table, 7000), Ok(vec![31337]));
        assert_eq!(parse_listening_inodes(table, 7001), Ok(vec![]));
        let torn = "header\n 0: 0100007F:1B58 00000000:0000 0A\n";
        assert!(parse_listening_inodes(torn, 7000).unwrap_err().contains("fewer than 10 fields"));
        let bad_port = "header\n 0: 0100007F:ZZZZ 00000000:0000 0A 0 0 0 0 0 31337\n";
        assert!(parse_listening_inodes(bad_port, 7000).unwrap_err().contains("\"ZZZZ\""));
    }

    /// A URL off the loopback is not looked for among this machine's processes (another
    /// machine's node could listen on the same port as a local process).
    #[test]
    fn a_node_off_the_loopback_is_not_measured() {
        let error = process_listening_at("https://10.1.2.3:7000").unwrap_err();
        assert!(error.contains("not on this machine's loopback"), "{error}");
        let not = Measured::find(&[("hub".into(), "https://10.1.2.3:7000".into())]);
        assert!(not.describe().starts_with("not measured: hub's process not found"), "{}", not.describe());
        assert!(not.sample().is_err());
    }
}
