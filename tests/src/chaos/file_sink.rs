//! The collector's file sink: its filesystem (a small tmpfs the harness
//! fills and frees), and its output read back in segments.
//!
//! At each SIGHUP the harness renames the sink's file to the next segment
//! name before signalling (the collector reopens its file on SIGHUP), so the
//! output never outgrows the small filesystem: a segment is read, checked
//! and deleted once the file after it exists (the collector has reopened, so
//! it writes the old one no more), and every segment at the end.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::checker::SinkCheck;

/// The sink's directory: a tmpfs mounted for the run, or a plain directory.
pub struct Disk {
    dir: PathBuf,
    mounted: bool,
    filler: Option<PathBuf>,
}

impl Disk {
    /// Mounts a tmpfs of `size` at `dir` when this process may (root); else
    /// a plain directory, with the reason it is not a small filesystem.
    pub fn new(dir: &Path, size: &str) -> (Disk, Option<String>) {
        std::fs::create_dir_all(dir).expect("create the sink's directory");
        // SAFETY: geteuid has no preconditions.
        let why = if unsafe { libc::geteuid() } != 0 {
            Some("mounting a small tmpfs needs root".to_string())
        } else {
            match Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir)
                .output()
            {
                Ok(o) if o.status.success() => None,
                Ok(o) => Some(format!(
                    "mount -t tmpfs failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Some(format!("mount: {e}")),
            }
        };
        (
            Disk {
                dir: dir.to_path_buf(),
                mounted: why.is_none(),
                filler: None,
            },
            why,
        )
    }

    /// Whether it is a small filesystem that can be filled.
    pub fn can_fill(&self) -> bool {
        self.mounted
    }

    /// A path in it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Fills it to the brim with one file.
    pub fn fill(&mut self) {
        let p = self.path("filler");
        if let Ok(mut f) = File::create(&p) {
            let chunk = vec![b'x'; 1 << 16];
            while matches!(f.write(&chunk), Ok(n) if n > 0) {}
            while matches!(f.write(b"x"), Ok(1)) {}
        }
        self.filler = Some(p);
    }

    /// Frees what [`fill`](Self::fill) took.
    pub fn free(&mut self) {
        if let Some(p) = self.filler.take() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Whether it is full now.
    pub fn is_full(&self) -> bool {
        self.filler.is_some()
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.free();
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// The file sink's output, read in segments.
pub struct Segments {
    file: PathBuf,
    next: u64,
    read: u64,
    /// What the file sink delivered.
    pub check: SinkCheck,
}

impl Segments {
    /// The output of a sink writing `file`.
    pub fn new(file: PathBuf) -> Segments {
        Segments {
            file,
            next: 0,
            read: 0,
            check: SinkCheck::new("file"),
        }
    }

    fn segment(&self, n: u64) -> PathBuf {
        let mut p = self.file.as_os_str().to_owned();
        p.push(format!(".seg{n}"));
        PathBuf::from(p)
    }

    /// Before a SIGHUP: moves the file aside as the next segment (nothing to
    /// do when the sink has not opened its file since the last one).
    pub fn cut(&mut self) {
        if std::fs::rename(&self.file, self.segment(self.next)).is_ok() {
            self.next += 1;
        }
    }

    /// Reads the segments the sink is done with; with `all`, every segment
    /// and the file itself (the collector has exited).
    pub fn consume(&mut self, all: bool) {
        if all {
            self.cut();
        }
        while self.read < self.next {
            // Done with segment n once the file or a later segment exists.
            let later = self.read + 1 < self.next || self.file.exists();
            if !all && !later {
                break;
            }
            let seg = self.segment(self.read);
            if let Ok(f) = File::open(&seg) {
                let mut r = BufReader::with_capacity(1 << 16, f);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match r.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if line.last() != Some(&b'\n') {
                        // The end of the last segment without a newline:
                        // cut by a killed collector whose successor's
                        // first line is in the next segment.
                        self.check.cut += 1;
                        break;
                    }
                    match std::str::from_utf8(&line[..line.len() - 1]) {
                        Ok(s) => self.check.json_line(s),
                        Err(_) => self.check.broken += 1,
                    }
                }
            }
            let _ = std::fs::remove_file(&seg);
            self.read += 1;
        }
    }
}
