//! The review queue on disk: flagged calls appended as JSON lines to a file in the data
//! directory, rotated by size (one previous file kept), and read back at start so the list
//! survives a restart. The processor keeps the entries in memory; this task writes them off
//! the ingest path.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use llmwatch_core::Processor;
use llmwatch_core::quality::ReviewEntry;

use crate::Shared;

/// How often new entries are appended.
const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// The rotated file beside `path`: `review.jsonl` → `review.jsonl.1`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Reads the entries of the previous file and the current one (oldest first) into the
/// processor's review queue. Lines that do not parse (a torn last write) are skipped.
pub(crate) fn restore(processor: &Processor, path: &Path) {
    let review = processor.quality().review();
    if !review.enabled() {
        return;
    }
    let keep = review.config().max_entries;
    let mut entries = std::collections::VecDeque::with_capacity(keep.min(4096));
    for file in [rotated(path), path.to_path_buf()] {
        let Ok(file) = File::open(&file) else {
            continue;
        };
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            if let Ok(entry) = serde_json::from_str::<ReviewEntry>(&line) {
                if entries.len() == keep {
                    entries.pop_front();
                }
                entries.push_back(entry);
            }
        }
    }
    if !entries.is_empty() {
        tracing::info!(entries = entries.len(), path = %path.display(), "review queue restored");
    }
    review.restore(entries);
}

/// Appends `entries`, first moving the file aside when it would pass `max_bytes`.
pub fn append(path: &Path, entries: &[Arc<ReviewEntry>], max_bytes: u64) -> std::io::Result<()> {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&serde_json::to_string(entry.as_ref()).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if size > 0 && size + text.len() as u64 > max_bytes {
        std::fs::rename(path, rotated(path))?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// Appends what was flagged since the last write.
fn write_new(shared: &Shared, path: &Path, max_bytes: u64) {
    let entries = shared.processor.quality().review().take_unwritten();
    if entries.is_empty() {
        return;
    }
    if let Err(error) = append(path, &entries, max_bytes) {
        tracing::warn!(%error, path = %path.display(), "review queue not written");
    }
}

/// Writes new entries every second until `stop`, then once more.
pub(crate) async fn run(shared: Arc<Shared>, stop: impl Future<Output = ()>) {
    let Some(path) = shared.config.review_file.clone() else {
        return stop.await;
    };
    let max_bytes = shared.config.review_max_file_bytes;
    let mut tick = tokio::time::interval(WRITE_INTERVAL);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let (shared, path) = (shared.clone(), path.clone());
                // Disk writes stay off the runtime's workers.
                let _ = tokio::task::spawn_blocking(move || write_new(&shared, &path, max_bytes))
                    .await;
            }
        }
    }
    write_new(&shared, &path, max_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmwatch_core::ProcessorConfig;

    fn entry(n: u64) -> Arc<ReviewEntry> {
        Arc::new(ReviewEntry {
            flagged_unix_nano: n,
            trace_id: format!("{n:032x}"),
            span_id: "0101010101010101".into(),
            service_name: "svc".into(),
            request_model: "m".into(),
            response_id: None,
            scores: vec![],
            reasons: vec!["safety: pii_email".into()],
            safety_flags: vec!["pii_email".into()],
            input: None,
            output: None,
        })
    }

    #[test]
    fn appends_rotate_by_size_and_restore_reads_both_files() {
        let dir = std::env::temp_dir().join(format!("llmwatch-review-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("review.jsonl");
        let line = serde_json::to_string(entry(1).as_ref()).unwrap().len() as u64 + 1;
        // Room for three lines per file.
        for n in 1..=7 {
            append(&path, &[entry(n)], 3 * line).unwrap();
        }
        let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
        assert_eq!((lines(&rotated(&path)), lines(&path)), (3, 1));
        // A torn line is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"flagged_unix")
            .unwrap();
        let processor = Processor::new(&ProcessorConfig::default()).unwrap();
        restore(&processor, &path);
        let listed: Vec<u64> = processor
            .quality()
            .review()
            .list(10)
            .iter()
            .map(|e| e.flagged_unix_nano)
            .collect();
        assert_eq!(listed, [7, 6, 5, 4]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
