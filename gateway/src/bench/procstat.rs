//! CPU time and memory of the bench's processes, read from Linux's `/proc`.

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`): fixed at 100 in the kernel's ABI
/// on every architecture Linux runs this on, whatever the kernel's own tick rate.
const USER_HZ: f64 = 100.0;

/// The CPU seconds (user + system) process `pid` has used so far, or `None` once it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: count from after it.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // Fields 3.. follow; utime and stime are fields 14 and 15.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Process `pid`'s resident memory now and its peak so far, in MiB (`VmRSS`, `VmHWM`).
pub fn memory_mb(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        // Burn a little CPU so the count is above zero on any machine.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let cpu = cpu_seconds(pid).expect("own stat");
        assert!(cpu > 0.0, "{cpu}");
        let (rss, peak) = memory_mb(pid).expect("own status");
        assert!(rss > 0.0 && peak >= rss, "{rss} {peak}");
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
