//! CPU time and memory of the services during a run, from `/proc` (Linux).
//!
//! The services are found by executable name (`payment-service`, `accounting-service`, the
//! base name of `argv[0]`) and by the `TOPIC_SUFFIX` in their environment, which must be the
//! bench's own: several stacks can share a machine (and a broker), and only the one under
//! test counts. Every instance is summed. Every 250 ms the sampler reads each one's resident
//! set (`VmRSS` in `/proc/<pid>/status`) and CPU time (`utime + stime` in `/proc/<pid>/stat`);
//! CPU seconds are the growth of that time during the run, peak RSS the largest sum of the
//! instances' resident sets seen at one sample.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The executables measured.
pub const SERVICES: [&str; 2] = ["payment-service", "accounting-service"];

/// How often resident sets are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// How often `/proc` is scanned for (new) instances, in samples.
const SCAN_EVERY_SAMPLES: u32 = 4;
/// Clock ticks per second of `/proc/<pid>/stat` times: Linux's `USER_HZ`, 100 on every
/// architecture this runs on (x86, ARM, RISC-V).
const TICKS_PER_SECOND: f64 = 100.0;

/// One service's use of the machine during the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceUsage {
    /// The instances seen (process ids).
    pub pids: Vec<u32>,
    /// CPU time (user + system) of all instances during the run, in seconds.
    pub cpu_seconds: f64,
    /// The largest sum of the instances' resident sets at one sample, in bytes.
    pub peak_rss_bytes: u64,
}

/// A running sampler; [`Sampler::finish`] stops it and gives the usage per service.
#[derive(Debug)]
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<BTreeMap<&'static str, ServiceUsage>>,
}

impl Sampler {
    /// Starts sampling the services whose `TOPIC_SUFFIX` is `topic_suffix`.
    pub fn start(topic_suffix: &str) -> Sampler {
        let (stop, mut stopped) = oneshot::channel();
        let suffix = topic_suffix.to_owned();
        let task = tokio::spawn(async move {
            let mut state = SamplerState::default();
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            let mut tick = 0_u32;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticker.tick() => {}
                }
                if tick.is_multiple_of(SCAN_EVERY_SAMPLES) {
                    state.scan(&suffix);
                }
                state.sample();
                tick = tick.wrapping_add(1);
            }
            // A last sample, so CPU time reaches the end of the run.
            state.sample();
            state.usage()
        });
        Sampler { stop, task }
    }

    /// Stops sampling.
    pub async fn finish(self) -> BTreeMap<&'static str, ServiceUsage> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// A process being watched.
#[derive(Debug)]
struct Watched {
    service: &'static str,
    first_ticks: u64,
    last_ticks: u64,
}

#[derive(Debug, Default)]
struct SamplerState {
    watched: BTreeMap<u32, Watched>,
    peak_rss: BTreeMap<&'static str, u64>,
}

impl SamplerState {
    fn scan(&mut self, suffix: &str) {
        for (pid, service) in find_services(suffix) {
            if let Some(ticks) = cpu_ticks(pid) {
                self.watched.entry(pid).or_insert(Watched {
                    service,
                    first_ticks: ticks,
                    last_ticks: ticks,
                });
            }
        }
    }

    fn sample(&mut self) {
        let mut rss: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (pid, watched) in &mut self.watched {
            // A process that exited keeps the CPU time of its last sample.
            if let Some(ticks) = cpu_ticks(*pid) {
                watched.last_ticks = ticks;
            }
            if let Some(bytes) = rss_bytes(*pid) {
                *rss.entry(watched.service).or_default() += bytes;
            }
        }
        for (service, bytes) in rss {
            let peak = self.peak_rss.entry(service).or_default();
            *peak = (*peak).max(bytes);
        }
    }

    fn usage(&self) -> BTreeMap<&'static str, ServiceUsage> {
        let mut usage: BTreeMap<&'static str, ServiceUsage> = SERVICES
            .iter()
            .map(|s| (*s, ServiceUsage::default()))
            .collect();
        for (pid, watched) in &self.watched {
            let entry = usage.entry(watched.service).or_default();
            entry.pids.push(*pid);
            entry.cpu_seconds +=
                watched.last_ticks.saturating_sub(watched.first_ticks) as f64 / TICKS_PER_SECOND;
        }
        for (service, peak) in &self.peak_rss {
            usage.entry(service).or_default().peak_rss_bytes = *peak;
        }
        usage
    }
}

/// The processes of [`SERVICES`] running with `TOPIC_SUFFIX` = `suffix` (absent = empty).
pub fn find_services(suffix: &str) -> Vec<(u32, &'static str)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let Some(service) = service_of(&cmdline) else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if topic_suffix_of(&environ) == suffix {
            found.push((pid, service));
        }
    }
    found
}

/// Which of [`SERVICES`] a process is, from its `/proc/<pid>/cmdline`.
fn service_of(cmdline: &[u8]) -> Option<&'static str> {
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    let argv0 = String::from_utf8_lossy(argv0);
    let name = argv0.rsplit('/').next()?;
    SERVICES.into_iter().find(|s| *s == name)
}

/// `TOPIC_SUFFIX` in a `/proc/<pid>/environ`; empty when not set.
fn topic_suffix_of(environ: &[u8]) -> String {
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(b"TOPIC_SUFFIX="))
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .unwrap_or_default()
}

/// `utime + stime` of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime + stime` from a `/proc/<pid>/stat` line: fields 14 and 15, counted after the
/// command name in parentheses (which may itself hold spaces and parentheses).
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The resident set of a process, in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    parse_status_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// `VmRSS:   12345 kB` from a `/proc/<pid>/status`, in bytes.
fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_known_by_executable_name() {
        assert_eq!(
            service_of(b"/x/target/release/payment-service\0"),
            Some("payment-service")
        );
        assert_eq!(
            service_of(b"./bin/accounting-service\0--flag\0"),
            Some("accounting-service")
        );
        assert_eq!(service_of(b"payment-service-old\0"), None);
        assert_eq!(service_of(b"/usr/bin/grep\0payment-service\0"), None);
    }

    #[test]
    fn the_topic_suffix_comes_from_the_environment() {
        assert_eq!(
            topic_suffix_of(b"A=1\0TOPIC_SUFFIX=.bench-dev\0B=2\0"),
            ".bench-dev"
        );
        assert_eq!(topic_suffix_of(b"A=1\0"), "");
        assert_eq!(topic_suffix_of(b"MY_TOPIC_SUFFIX=.x\0"), "");
    }

    #[test]
    fn cpu_ticks_and_rss_are_read_from_proc_formats() {
        let stat = "4242 (payment (x) svc) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    150 50 0 0 20 0 9 0 100 200000000 3000 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(200));
        let status = "Name:\tpayment-service\nVmPeak:\t  99999 kB\nVmRSS:\t   23456 kB\n";
        assert_eq!(parse_status_rss(status), Some(23_456 * 1024));
        assert_eq!(parse_status_rss("Name: x\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(rss_bytes(me).unwrap() > 0);
    }
}
