//! Running the load analysis over capture files: the files in timeline order and, with several
//! threads, one thread reading and dissecting while the others aggregate a share of the clients
//! each (the server detected first when it is not given), merged when all are done.

use super::reader::{CaptureError, CaptureFile, Frame, order_files};
use std::path::PathBuf;
use std::sync::mpsc;
use timeaudit_analysis::capture::load::{Load, LoadAnalyzer, LoadConfig, Servers, client_of, detect_servers, shard_of};
use timeaudit_analysis::capture::record::{FrameClass, PacketSummary, classify_frame};

/// Frames between two progress reports.
const PROGRESS_EVERY_FRAMES: u64 = 1 << 16;

/// How reading one file went.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileRead {
    /// The file.
    pub file: String,
    /// Frames read from it.
    pub frames: u64,
    /// Why it could not be read, or where reading stopped (frames before it were counted).
    pub error: Option<String>,
}

/// Capture files in timeline order (by first packet), each with its first timestamp or the
/// error that prevents reading it.
pub type OrderedFiles = Vec<(PathBuf, Result<Option<i64>, CaptureError>)>;

/// Reads every frame of `files` in order, calling `on_frame` for each and `progress` with the
/// bytes read so far (every 65,536 frames). A damaged file ends at the damage and reading goes on
/// with the next file.
pub fn read_frames(
    files: &OrderedFiles,
    progress: &(dyn Fn(u64) + Sync),
    mut on_frame: impl FnMut(Frame<'_>),
) -> Vec<FileRead> {
    let mut reads = Vec::with_capacity(files.len());
    let mut done_bytes = 0u64;
    for (path, first) in files {
        let name = path.display().to_string();
        if let Err(e) = first {
            reads.push(FileRead { file: name, frames: 0, error: Some(e.to_string()) });
            continue;
        }
        let mut file = match CaptureFile::open(path) {
            Ok(f) => f,
            Err(e) => {
                reads.push(FileRead { file: name, frames: 0, error: Some(e.to_string()) });
                continue;
            }
        };
        let mut error = None;
        loop {
            match file.next_frame() {
                Ok(Some(frame)) => on_frame(frame),
                Ok(None) => break,
                Err(damage) => {
                    error = Some(format!("{name}: {damage} ({} frames read before it)", file.frames()));
                    break;
                }
            }
            if file.frames() % PROGRESS_EVERY_FRAMES == 0 {
                progress(done_bytes + file.raw_position());
            }
        }
        done_bytes += file.file_len();
        reads.push(FileRead { file: name, frames: file.frames(), error });
    }
    reads
}

/// The server of a capture as [`LoadAnalyzer`] would detect it: from the first `window` NTP
/// packets of the timeline.
pub fn detect_servers_in(files: &OrderedFiles, window: usize) -> Servers {
    let mut pending = Vec::with_capacity(window.min(1 << 20));
    'files: for (path, first) in files {
        if first.is_err() {
            continue;
        }
        let Ok(mut file) = CaptureFile::open(path) else { continue };
        while let Ok(Some(f)) = file.next_frame() {
            if let FrameClass::Ntp(ntp) = classify_frame(f.linktype, f.ts_ns, f.orig_len, f.data) {
                pending.push(ntp.summary());
                if pending.len() >= window.max(1) {
                    break 'files;
                }
            }
        }
    }
    detect_servers(&pending)
}

/// The load of a capture read from one or more files.
#[derive(Debug)]
pub struct CaptureAnalysis {
    /// The aggregated load.
    pub load: Load,
    /// How each file went, in timeline order.
    pub files: Vec<FileRead>,
}

impl CaptureAnalysis {
    /// Frames read from all files.
    pub fn frames(&self) -> u64 {
        self.files.iter().map(|f| f.frames).sum()
    }
}

/// The reading thread also aggregates one share of the clients, each other thread this many
/// shares: reading, dissecting and handing over cost almost as much as aggregating, so on two
/// CPUs the reader keeps a sixth of the clients (measured: 1/6 and 1/9 are best on the 5-million
/// packet benchmark, 1/2 is 30 % slower, none 10 % slower).
const FRONT_SHARE_RATIO: usize = 5;
/// NTP packet summaries per batch handed from the reading thread to an aggregating one.
const BATCH: usize = 4096;
/// Batches queued per aggregating thread (bounds memory: a batch is 4096 summaries of 80 bytes,
/// 328 KB).
const BATCHES_IN_FLIGHT: usize = 8;

/// Analyses `paths` as one capture with `threads` threads (at least 1). With more than one, the
/// server is detected first (unless `cfg.servers` names it); this thread reads and dissects every
/// frame and aggregates the NTP packets of one share of the clients, handing the others to
/// `threads - 1` aggregating threads by client ([`shard_of`]), so each aggregates a disjoint
/// share of the clients in capture order; their results are merged. The result equals a single
/// thread's.
pub fn analyse_files(
    paths: &[PathBuf],
    cfg: LoadConfig,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> CaptureAnalysis {
    let files = order_files(paths);
    if threads <= 1 {
        let mut analyzer = LoadAnalyzer::new(cfg);
        let reads = read_frames(&files, progress, |f| analyzer.add_frame(f.linktype, f.ts_ns, f.orig_len, f.data));
        return CaptureAnalysis { load: analyzer.finish(), files: reads };
    }
    let servers = if cfg.servers.is_empty() { detect_servers_in(&files, cfg.detect_window) } else { cfg.servers };
    let shards = threads - 1;
    let shares = FRONT_SHARE_RATIO * shards + 1;
    let mut front = LoadAnalyzer::with_known_servers(cfg, servers);
    let (reads, aggregated) = std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(shards);
        let mut recyclers = Vec::with_capacity(shards);
        let mut workers = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (full_tx, full_rx) = mpsc::sync_channel::<Vec<PacketSummary>>(BATCHES_IN_FLIGHT);
            let (empty_tx, empty_rx) = mpsc::channel::<Vec<PacketSummary>>();
            senders.push(full_tx);
            recyclers.push(empty_rx);
            workers.push(scope.spawn(move || {
                let mut analyzer = LoadAnalyzer::with_known_servers(cfg, servers);
                for mut batch in full_rx {
                    analyzer.add_summaries(&batch);
                    batch.clear();
                    let _ = empty_tx.send(batch);
                }
                analyzer.finish()
            }));
        }
        let mut batches: Vec<Vec<PacketSummary>> = (0..shards).map(|_| Vec::with_capacity(BATCH)).collect();
        let reads = read_frames(&files, progress, |f| {
            let Some(s) = front.split_frame(f.linktype, f.ts_ns, f.orig_len, f.data) else { return };
            let share = client_of(&servers, s.src, s.dst).map_or(0, |c| shard_of(c, shares));
            if share == 0 {
                front.add_summary(s);
                return;
            }
            let shard = (share - 1) / FRONT_SHARE_RATIO;
            let batch = &mut batches[shard];
            batch.push(s);
            if batch.len() == BATCH {
                let next = recyclers[shard].try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
                let _ = senders[shard].send(std::mem::replace(batch, next));
            }
        });
        for (batch, tx) in batches.into_iter().zip(&senders) {
            let _ = tx.send(batch);
        }
        drop(senders);
        let aggregated: Vec<Load> =
            workers.into_iter().map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect();
        (reads, aggregated)
    });
    let mut load = front.finish();
    for part in aggregated {
        load.merge(part);
    }
    CaptureAnalysis { load, files: reads }
}
