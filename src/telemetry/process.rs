//! Process metrics read from `/proc/self` at each scrape, with the names the
//! Prometheus client libraries use: CPU seconds, resident and virtual memory,
//! open and maximum file descriptors, threads, start time. prometheus-client
//! has no collector for these; reading /proc is what its users do.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ: 100 on Linux for
/// every architecture's user-space ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// Reads `/proc/self` at each scrape.
#[derive(Debug)]
pub struct ProcessCollector {
    start_time_secs: Option<f64>,
}

impl ProcessCollector {
    /// Computes the start time once: it does not change.
    pub fn new() -> Self {
        Self {
            start_time_secs: start_time(),
        }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

/// What one scrape reads.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_secs: Option<f64>,
    rss_bytes: Option<i64>,
    virtual_bytes: Option<i64>,
    threads: Option<i64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = sample();
        if let Some(v) = s.cpu_secs {
            let m = ConstCounter::new(v);
            m.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                m.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.rss_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                s.max_fds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                s.threads,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let m = ConstGauge::new(v);
                m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
            }
        }
        if let Some(v) = self.start_time_secs {
            let m = ConstGauge::new(v);
            m.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                None,
                m.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

fn sample() -> Sample {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut s = parse(&stat, &status);
    // Less the descriptor `read_dir` itself holds open.
    s.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as i64 - 1);
    s.max_fds = rlimit::Resource::NOFILE
        .get()
        .ok()
        .and_then(|(soft, _)| i64::try_from(soft).ok());
    s
}

/// CPU from `stat` (utime + stime), memory and threads from `status`.
fn parse(stat: &str, status: &str) -> Sample {
    // The fields after the command name, which is in parentheses and may
    // itself contain spaces or parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let cpu_secs = match (tick(11), tick(12)) {
        (Some(user), Some(system)) => Some((user + system) as f64 / TICKS_PER_SEC),
        _ => None,
    };
    let status_kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Sample {
        cpu_secs,
        rss_bytes: status_kib("VmRSS:").map(|kib| kib * 1024),
        virtual_bytes: status_kib("VmSize:").map(|kib| kib * 1024),
        threads: status_kib("Threads:"),
        open_fds: None,
        max_fds: None,
    }
}

/// Boot time (`btime` of /proc/stat) plus the process's start in ticks.
fn start_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let start_ticks: f64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let started = boot + start_ticks / TICKS_PER_SEC;
    // A sanity bound: not in the future.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    (started <= now + 1.0).then_some(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "4242 (cognito (v) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 12 0 777 100 200";
        let status = "Name:\tcognito\nVmSize:\t  100 kB\nVmRSS:\t    12 kB\nThreads:\t7\n";
        let s = parse(stat, status);
        assert_eq!(s.cpu_secs, Some(3.0));
        assert_eq!(s.rss_bytes, Some(12 * 1024));
        assert_eq!(s.virtual_bytes, Some(100 * 1024));
        assert_eq!(s.threads, Some(7));
    }

    #[test]
    fn this_process_has_a_sample() {
        let s = sample();
        assert!(s.rss_bytes.unwrap() > 0 && s.open_fds.unwrap() > 0, "{s:?}");
        assert!(start_time().is_some());
    }
}
