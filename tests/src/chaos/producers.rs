//! The producer processes: how each kind is started, and its books read back.
//!
//! | kind | program | threads |
//! |---|---|---|
//! | `r` Rust | `chaos-producer` (`logbus::Builder::init` + `tracing`) | 3 |
//! | `c` C | `tests/chaos/producer.c`, compiled against `liblogbus_c.so` | 2 |
//! | `p` Python | `tests/chaos/producer.py` (`logbus.Handler`) | 2 |
//! | `s` shell | `tests/chaos/producer.sh` (`logbus emit` per record) | 1 |
//!
//! Each gets a name (kind letter and a number), a ledger file (`ledger.rs`)
//! and a stderr file in the run's directory, and a deadline; it exits 0 at
//! the deadline unless killed first.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::ledger::{self, ThreadBooks};

/// One kind of producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `chaos-producer`.
    Rust,
    /// The C program.
    C,
    /// The Python program.
    Python,
    /// The shell loop.
    Shell,
}

impl Kind {
    /// From its option name (`options::KINDS`).
    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "rust" => Kind::Rust,
            "c" => Kind::C,
            "python" => Kind::Python,
            "shell" => Kind::Shell,
            _ => return None,
        })
    }

    /// Its letter in producer names.
    pub fn letter(self) -> char {
        match self {
            Kind::Rust => 'r',
            Kind::C => 'c',
            Kind::Python => 'p',
            Kind::Shell => 's',
        }
    }

    /// Threads each producer of this kind runs.
    pub fn threads(self) -> usize {
        match self {
            Kind::Rust => 3,
            Kind::C | Kind::Python => 2,
            Kind::Shell => 1,
        }
    }
}

/// What the producers need from the workspace.
#[derive(Clone, Debug)]
pub struct Programs {
    /// `chaos-producer`.
    pub rust: PathBuf,
    /// The compiled C producer, if it could be built.
    pub c: Option<PathBuf>,
    /// The Python interpreter and the script, if a usable one was given.
    pub python: Option<(PathBuf, PathBuf)>,
    /// `producer.sh` and the `logbus` binary it runs.
    pub shell: (PathBuf, PathBuf),
}

/// Largest message the producers write: the ring's `max_message`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `logbus stat --json`'s `max_message`.
    pub max_msg: usize,
}

/// A producer process and where its books are.
pub struct Producer {
    /// Its name, e.g. `r3`.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// The process (None once reaped).
    pub child: Child,
    /// Its ledger.
    pub ledger: PathBuf,
    /// Its stderr.
    pub stderr: PathBuf,
    /// Whether the harness SIGKILLed it.
    pub killed: bool,
    /// Whether it is stopped (SIGSTOP) now.
    pub stopped: bool,
    /// Its exit status, once reaped.
    pub status: Option<std::process::ExitStatus>,
}

impl Producer {
    /// Starts producer `n` of `kind` on `ring`, in `dir`, running until
    /// `until_ms` (ms since the Unix epoch).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        programs: &Programs,
        kind: Kind,
        n: usize,
        seed: u64,
        ring: &Path,
        dir: &Path,
        limits: Limits,
        until_ms: u64,
    ) -> std::io::Result<Producer> {
        let name = format!("{}{n}", kind.letter());
        let ledger = dir.join(format!("{name}.ledger"));
        let stderr = dir.join(format!("{name}.stderr"));
        let threads = kind.threads().to_string();
        let (seed, max, until) = (
            seed.to_string(),
            limits.max_msg.to_string(),
            until_ms.to_string(),
        );
        let mut cmd = match kind {
            Kind::Rust => {
                let mut c = Command::new(&programs.rust);
                c.arg(ring).arg(&ledger).args([
                    "--name",
                    &name,
                    "--threads",
                    &threads,
                    "--seed",
                    &seed,
                    "--max-msg",
                    &max,
                    "--until-ms",
                    &until,
                ]);
                c
            }
            Kind::C => {
                let exe = programs.c.as_ref().expect("C producer built");
                let mut c = Command::new(exe);
                c.arg(ring)
                    .arg(&ledger)
                    .args([&name, &threads, &seed, &max, &until]);
                c
            }
            Kind::Python => {
                let (py, script) = programs.python.as_ref().expect("python available");
                let mut c = Command::new(py);
                c.arg(script)
                    .arg(ring)
                    .arg(&ledger)
                    .args([&name, &threads, &seed, &max, &until]);
                c
            }
            Kind::Shell => {
                let (script, logbus) = &programs.shell;
                let mut c = Command::new("bash");
                // The seed of bash's $RANDOM is 15 bits wide.
                let short = (seed.parse::<u64>().unwrap_or(0) % 32768).to_string();
                c.arg(script)
                    .arg(logbus)
                    .arg(ring)
                    .arg(&ledger)
                    .args([&name, &short, &max, &until]);
                c
            }
        };
        let child = cmd
            .env_remove("LOGBUS_RING")
            .env("OTEL_SERVICE_NAME", &name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr)?)
            .spawn()?;
        Ok(Producer {
            name,
            kind,
            child,
            ledger,
            stderr,
            killed: false,
            stopped: false,
            status: None,
        })
    }

    /// The pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig`; false when the process is gone.
    pub fn signal(&self, sig: i32) -> bool {
        // SAFETY: kill(2) on our own unreaped child's pid (a zombie at worst,
        // so the pid cannot have been reused) has no memory-safety preconditions.
        self.status.is_none() && unsafe { libc::kill(self.pid(), sig) } == 0
    }

    /// Reaps it if it exited; true when it has.
    pub fn reap(&mut self) -> bool {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
            }
        }
        self.status.is_some()
    }

    /// Its books, one entry per thread.
    pub fn books(&self) -> Vec<ThreadBooks> {
        match self.kind {
            Kind::Shell => vec![ledger::read_shell(&self.ledger)],
            k => ledger::read(&self.ledger, k.threads()),
        }
    }
}

/// Compiles the C producer into `dir` against the `liblogbus_c.so` of
/// `lib_dir`; the reason when it cannot.
pub fn build_c(root: &Path, lib_dir: &Path, dir: &Path) -> Result<PathBuf, String> {
    if !lib_dir.join("liblogbus_c.so").exists() {
        return Err(format!(
            "{} has no liblogbus_c.so (cargo build -p logbus-ffi)",
            lib_dir.display()
        ));
    }
    let exe = dir.join("c-producer");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-O2", "-Wall", "-o"])
        .arg(&exe)
        .arg(root.join("tests/chaos/producer.c"))
        .arg(format!(
            "-I{}",
            root.join("crates/logbus-ffi/include").display()
        ))
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-llogbus_c")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lpthread")
        .output()
        .map_err(|e| format!("{cc}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cc} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(exe)
}

/// Checks that `python` imports `logbus`; the reason when it does not.
pub fn check_python(python: &Path) -> Result<(), String> {
    let out = Command::new(python)
        .args(["-c", "import logbus; logbus.Handler"])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} cannot import logbus: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}
