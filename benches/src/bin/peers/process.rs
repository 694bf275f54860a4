//! A system under test as a child process: started with its standard input as the stop signal
//! (every peer stops cleanly when it closes), measured from `/proc` while it runs.

use std::cell::Cell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use benches::wait::Observed;

/// Kernel clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux ABI the
/// harness runs on).
const USER_HZ: f64 = 100.0;

/// What a child process has used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// User + system CPU time of all its threads, seconds.
    pub cpu_s: f64,
    /// Peak resident set size (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
}

/// A running system under test.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    /// What it had used when the output last grew, sampled at most every [`SAMPLE_EVERY`].
    at_last_output: Cell<Option<(Instant, Usage)>>,
}

/// How often [`Process::usage_at_last_output`] is sampled while the output grows.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

impl Process {
    /// Starts `command` with a pipe as standard input and `log` as standard output and error.
    pub fn spawn(mut command: Command, log: &Path) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file")?;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            log: log.to_path_buf(),
            at_last_output: Cell::new(None),
        })
    }

    /// CPU time and peak memory when the output last grew (within [`SAMPLE_EVERY`]), as seen
    /// while [`benches::wait::until_done`] waited: what a run that ended quiet used for its
    /// work, without the idle settle time.
    pub fn usage_at_last_output(&self) -> Option<Usage> {
        self.at_last_output.get().map(|(_, usage)| usage)
    }

    /// CPU time and peak memory so far.
    pub fn usage(&self) -> Result<Usage> {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        let (_, state) = parse_stat(&stat).ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        Ok(Usage {
            cpu_s: state.cpu_ticks as f64 / USER_HZ,
            peak_rss_mib: parse_hwm_kib(&status).unwrap_or_default() as f64 / 1024.0,
        })
    }

    /// Closes its standard input and waits up to `grace` for it to exit (a clean stop commits
    /// and leaves the group); kills it after that.
    pub fn stop(mut self, grace: Duration) -> Result<ExitStatus> {
        drop(self.stdin.take());
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the child")? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                eprintln!("  the child did not stop within {grace:?}; killing it");
                self.child.kill().context("killing the child")?;
                return self.child.wait().context("waiting for the child");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `lines` lines of its output, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

impl Observed for Process {
    fn consumed(&self) -> Option<u64> {
        None
    }

    fn is_running(&self) -> bool {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat).map(|(_, state)| state.state != 'Z'))
            .unwrap_or(false)
    }

    fn outputs_grew(&self) {
        let due = self
            .at_last_output
            .get()
            .is_none_or(|(at, _)| at.elapsed() >= SAMPLE_EVERY);
        if due {
            if let Ok(usage) = self.usage() {
                self.at_last_output.set(Some((Instant::now(), usage)));
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `lines` lines of the file at `path` (empty when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The fields of `/proc/<pid>/stat` the harness reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatFields {
    /// Process state: `R`, `S`, `Z` (exited, not yet reaped), …
    state: char,
    /// `utime + stime`, in clock ticks.
    cpu_ticks: u64,
}

/// Parses `/proc/<pid>/stat`; the command name (field 2) may hold spaces and parentheses, so
/// the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(String, StatFields)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((
        name,
        StatFields {
            state,
            cpu_ticks: utime + stime,
        },
    ))
}

/// `VmHWM` of `/proc/<pid>/status`, KiB.
fn parse_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "42 (java (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 30 0 1";
        let (name, fields) = parse_stat(stat).unwrap();
        assert_eq!(name, "java (x) y");
        assert_eq!(
            fields,
            StatFields {
                state: 'S',
                cpu_ticks: 280
            }
        );
    }

    #[test]
    fn peak_rss_comes_from_vm_hwm() {
        let status = "Name:\tpython\nVmPeak:\t 900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_hwm_kib(status), Some(2048));
    }

    #[test]
    fn this_process_has_usage() {
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_stat(&own).is_some());
    }
}
