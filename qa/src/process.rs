//! A process's resident memory, threads and open file descriptors, from `/proc`.

use std::path::Path;

/// What one process holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessFigures {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Threads (`Threads`).
    pub threads: u64,
    /// Open file descriptors (entries of `/proc/PID/fd`).
    pub fds: u64,
}

impl ProcessFigures {
    /// The figures of process `pid`; an error once it has exited.
    pub fn read(pid: u32) -> std::io::Result<ProcessFigures> {
        let dir = Path::new("/proc").join(pid.to_string());
        let status = std::fs::read_to_string(dir.join("status"))?;
        let fds = std::fs::read_dir(dir.join("fd"))?.count() as u64;
        let field = |name: &str| {
            parse_status_field(&status, name)
                .ok_or_else(|| std::io::Error::other(format!("no `{name}` in /proc/{pid}/status")))
        };
        Ok(ProcessFigures {
            rss_kib: field("VmRSS")?,
            threads: field("Threads")?,
            fds,
        })
    }

    /// Resident set size in MB (10^6 bytes).
    pub fn rss_mb(&self) -> f64 {
        self.rss_kib as f64 * 1024.0 / 1e6
    }
}

/// The number of a `/proc/PID/status` line such as `VmRSS:    123456 kB`.
fn parse_status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.split_whitespace().next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_by_name() {
        let status = "Name:\tsoak_app\nVmRSS:\t  81234 kB\nThreads:\t27\n";
        assert_eq!(parse_status_field(status, "VmRSS"), Some(81234));
        assert_eq!(parse_status_field(status, "Threads"), Some(27));
        assert_eq!(parse_status_field(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_has_memory_threads_and_descriptors() {
        let own = ProcessFigures::read(std::process::id()).unwrap();
        assert!(
            own.rss_kib > 0 && own.threads >= 1 && own.fds >= 3,
            "{own:?}"
        );
    }
}
