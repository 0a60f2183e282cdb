//! Readings of a process from `/proc`: CPU time (`stat`) and resident memory (`status`). Linux only; on a
//! read failure the caller gets `None` and reports the figure as unknown.

use std::time::Duration;

/// `USER_HZ`, the unit of the CPU times in `/proc/PID/stat`. The kernel fixes it at 100 on every
/// architecture hivewatch is built for, whatever `CONFIG_HZ` is.
const USER_HZ: u64 = 100;

/// User plus system CPU time the process has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// utime + stime (fields 14 and 15) from a `/proc/PID/stat` line. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted from its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th items.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, "VmRSS:")
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Busy CPU time of the whole machine, all cores together (`/proc/stat`: everything but idle and iowait).
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_busy(&stat).map(|ticks| Duration::from_millis(ticks * 1000 / USER_HZ))
}

fn parse_machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already inside user and nice]
    let busy = ticks.iter().take(8).sum::<u64>() - ticks.get(3)? - ticks.get(4)?;
    Some(busy)
}

/// CPU use between two readings, in percent of one core: of one process, or of the whole machine.
pub struct CpuMeter {
    /// `None`: the whole machine.
    pid: Option<u32>,
    start: Option<Duration>,
    wall: std::time::Instant,
}

impl CpuMeter {
    pub fn start(pid: u32) -> CpuMeter {
        CpuMeter {
            pid: Some(pid),
            start: cpu_time(pid),
            wall: std::time::Instant::now(),
        }
    }

    pub fn machine() -> CpuMeter {
        CpuMeter {
            pid: None,
            start: machine_busy(),
            wall: std::time::Instant::now(),
        }
    }

    fn now(&self) -> Option<Duration> {
        match self.pid {
            Some(pid) => cpu_time(pid),
            None => machine_busy(),
        }
    }

    /// Percent of one core since `start` (200 = both cores of a two-core machine busy).
    pub fn percent(&self) -> Option<f64> {
        let used = self.now()?.checked_sub(self.start?)?;
        let wall = self.wall.elapsed().as_secs_f64();
        (wall > 0.0).then(|| used.as_secs_f64() * 100.0 / wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (hive watch) (x)) S 1 4242 4242 0 -1 4194560 2716 0 0 0 150 27 0 0 20 0 9 0 \
                    1234 1021968384 2436 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(177));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn rss_is_read_from_status() {
        let status = "Name:\thivewatch\nVmPeak:\t  123456 kB\nVmRSS:\t    9876 kB\nThreads:\t9\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(9876));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1\n";
        assert_eq!(parse_machine_busy(stat), Some(161));
        assert_eq!(parse_machine_busy("intr 1\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let pid = std::process::id();
        assert!(rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(cpu_time(pid).is_some());
        assert!(machine_busy().is_some());
    }
}
