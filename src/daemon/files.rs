//! The file writer: a thread that owns the files recordings go to and appends what the
//! workers' endpoints hand it, so that no worker and no control task ever waits on a disk.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use crate::call::{FileId, FileWrite};
use crate::media::{OggOpusError, open_regular};

/// Messages the writer thread waits for; bounded, so a stuck disk cannot pin memory.
const QUEUE: usize = 4096;

enum FileMsg {
    Open(FileId, File, String),
    Write(FileWrite),
    /// Answered once everything handed over before it was written.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Where workers hand recordings' bytes.
#[derive(Clone)]
pub struct FileSink {
    tx: SyncSender<FileMsg>,
}

impl FileSink {
    /// Hands bytes to the writer; `false` (the bytes are dropped) when its queue is full.
    pub fn write(&self, w: FileWrite) -> bool {
        match self.tx.try_send(FileMsg::Write(w)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!("file writer queue full: recording bytes dropped");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The daemon's file writer.
pub struct Files {
    sink: Mutex<Option<FileSink>>,
    next: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Files {
    /// Starts the writer thread.
    pub fn start() -> std::io::Result<Files> {
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("srtpd-files".into())
            .spawn(move || write_files(rx))?;
        Ok(Files {
            sink: Mutex::new(Some(FileSink { tx })),
            next: AtomicU64::new(1),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Where workers hand bytes.
    pub fn sink(&self) -> Option<FileSink> {
        self.sink.lock().expect("files lock").clone()
    }

    /// Creates a regular file at `path` for a recording (an existing one is refused unless
    /// `overwrite`, then truncated), off the async runtime, and gives it to the writer; a
    /// FIFO, a device or a directory is refused rather than waited on.
    pub async fn create(&self, path: &Path, overwrite: bool) -> Result<FileId, OggOpusError> {
        let owned = path.to_owned();
        let file = tokio::task::spawn_blocking(move || {
            let mut options = std::fs::OpenOptions::new();
            options.write(true);
            if overwrite {
                options.create(true);
            } else {
                options.create_new(true);
            }
            let file = open_regular(&owned, &mut options).map_err(|e| match e {
                OggOpusError::Io { path, source }
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    OggOpusError::Io {
                        path,
                        source: std::io::Error::new(
                            source.kind(),
                            "exists; give \"overwrite\": true to replace it",
                        ),
                    }
                }
                other => other,
            })?;
            file.set_len(0).map_err(|source| OggOpusError::Io {
                path: owned.display().to_string(),
                source,
            })?;
            Ok::<_, OggOpusError>(file)
        })
        .await
        .map_err(|e| OggOpusError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })??;
        let id = FileId(self.next.fetch_add(1, Ordering::Relaxed));
        let sink = self.sink().ok_or_else(|| OggOpusError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other("the daemon is shutting down"),
        })?;
        sink.tx
            .try_send(FileMsg::Open(id, file, path.display().to_string()))
            .map_err(|_| OggOpusError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other("the file writer is busy or stopped"),
            })?;
        Ok(id)
    }

    /// Returns once everything handed to the writer so far was written (or at once if its
    /// queue is full or it stopped).
    pub async fn written(&self) {
        let Some(sink) = self.sink() else { return };
        let (done, written) = tokio::sync::oneshot::channel();
        if sink.tx.try_send(FileMsg::Barrier(done)).is_ok() {
            let _ = written.await;
        }
    }

    /// Lets the writer finish what it was handed and stop (once every worker, which holds
    /// a sink too, has stopped).
    pub fn finish(&self) {
        self.sink.lock().expect("files lock").take();
        if let Some(t) = self.thread.lock().expect("files lock").take() {
            let _ = t.join();
        }
    }
}

fn write_files(rx: Receiver<FileMsg>) {
    let mut files: HashMap<FileId, (File, String)> = HashMap::new();
    for msg in rx {
        match msg {
            FileMsg::Open(id, file, path) => {
                files.insert(id, (file, path));
            }
            FileMsg::Write(w) => {
                if let Some((file, path)) = files.get_mut(&w.file) {
                    let written = file.write_all(&w.data).and_then(|()| {
                        w.patches
                            .iter()
                            .try_for_each(|(at, bytes)| file.write_all_at(bytes, *at))
                    });
                    if let Err(e) = written {
                        tracing::warn!(path = ?path, "recording: {e}");
                    }
                }
                if w.last {
                    files.remove(&w.file);
                }
            }
            FileMsg::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}
