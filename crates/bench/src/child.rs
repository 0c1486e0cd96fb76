//! A child process of the suite (`tandem export`, `tandem import`) run to
//! its end, timed, with its peak resident size sampled while it runs.

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

/// How a measured child process ended.
pub(crate) struct Finished {
    pub status: ExitStatus,
    /// From the start to the exit.
    pub took: Duration,
    /// The peak resident size (VmHWM) seen, in bytes.
    pub peak_rss: u64,
    pub stdout: String,
    pub stderr: String,
}

/// The peak resident size of a process so far, in bytes (0 once it is gone).
fn peak_rss(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Drains a child's pipe into a string, so that the child never blocks on
/// a full pipe.
fn drain(pipe: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            // A pipe that fails to read leaves what was read.
            let _ = p.read_to_string(&mut s).await;
        }
        s
    })
}

/// Runs `command` (stdout and stderr captured) to its end, sampling its
/// peak resident size every 20 ms.
pub(crate) async fn run_measured(mut command: Command, what: &str) -> anyhow::Result<Finished> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let pid = child.id().with_context(|| format!("{what} has no pid"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut peak = 0u64;
    let status = loop {
        peak = peak.max(peak_rss(pid));
        if let Some(s) = child.try_wait()? {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = started.elapsed();
    Ok(Finished { status, took, peak_rss: peak, stdout: stdout.await?, stderr: stderr.await? })
}
