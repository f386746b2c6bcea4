//! Opening and creating a ring file, and the handle every other part uses.
//!
//! Creation is race-free: the creator builds the whole file under a temporary
//! name in the same directory (created with `O_EXCL`, header written, every
//! byte allocated, checked and mapped as an opener would), then gives it its real name with `link(2)`, which fails if
//! the name exists. So an opener either finds no file or a completely
//! initialised one, two creators end with one ring, and an existing ring is
//! never reinitialised. A create that fails removes its temporary file.
//!
//! Opening never follows a symlink (`O_NOFOLLOW`), never waits on a FIFO or a
//! device (`O_NONBLOCK`, then `fstat`: only a regular file is accepted), and
//! checks who could have written the file (see `SECURITY.md`): a ring writable
//! by other users, or (when opened for writing) owned by another user, is
//! refused with one line naming its owner and mode, unless
//! `$LOGBUS_TRUST_GROUP` names its group. [`Ring::open_read_only`] maps the
//! file read-only, for peers that only inspect it.
//!
//! A file shrunk by another process *after* it was opened makes accesses past
//! the new end raise SIGBUS. A library must not take that signal from its host
//! program, so nothing is installed on open: a program that wants to survive
//! it calls [`crate::sigbus::install`] once (the collector and the CLI do),
//! after which a fault inside a ring mapping maps zero pages over the vanished
//! range and flags the ring ([`Ring::faulted`]). [`Ring::check_size`] tells
//! whether the file still has the mapped size.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

use crate::error::OpenError;
use crate::fork;
use crate::layout::*;

/// The environment variable naming the ring path.
pub const RING_ENV: &str = "LOGBUS_RING";
/// The ring path when neither an explicit path nor [`RING_ENV`] is given.
pub const DEFAULT_RING: &str = "/dev/shm/logbus";

/// The ring path to use: `explicit`, else `$LOGBUS_RING`, else `/dev/shm/logbus`.
///
/// ```
/// let p = logbus_ring::ring_path(Some("/tmp/x".as_ref()));
/// assert_eq!(p, std::path::PathBuf::from("/tmp/x"));
/// ```
pub fn ring_path(explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os(RING_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RING)),
    }
}

/// How to create a ring when none exists yet. An existing ring is always opened
/// with the geometry and policy in its own header.
#[derive(Clone, Debug)]
pub struct RingOptions {
    /// Bytes of record data (rounded down to whole blocks; at least 4 blocks).
    pub size: u64,
    /// Bytes per block (a power of two, 4 KiB to 16 MiB); the largest record.
    pub block_size: u32,
    /// File mode of a new ring.
    pub mode: u32,
    /// Records at or above this severity are protected (default 13, WARN).
    pub protect_severity: u8,
    /// Per level (TRACE..FATAL): the percentage of the ring its records may fill.
    pub watermarks: [u8; 6],
    /// Longest message kept whole.
    pub max_message: u32,
    /// Lossless mode: a producer that finds no room waits up to this many ms
    /// for the consumer to free some before the overflow policy applies (0:
    /// producers never wait).
    pub wait_ms: u32,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            size: DEFAULT_SIZE,
            block_size: DEFAULT_BLOCK_SIZE,
            mode: 0o600,
            protect_severity: 13,
            // DEBUG and TRACE may fill half the ring, INFO three quarters, so
            // that WARN and above normally find room without evicting anything.
            watermarks: [50, 50, 75, 100, 100, 100],
            max_message: DEFAULT_MAX_MESSAGE,
            wait_ms: 0,
        }
    }
}

impl RingOptions {
    /// The geometry these options give.
    pub fn geometry(&self) -> Geometry {
        let block = self.block_size.max(1) as u64;
        Geometry {
            block_size: self.block_size,
            blocks: (self.size / block).min(u32::MAX as u64) as u32,
        }
    }
}

/// Maps a block's sequence number to its physical block, `seq % blocks`: a
/// mask when `blocks` is a power of two (the default ring's 512, and any ring
/// whose size is a power-of-two multiple of its block size), a division
/// otherwise. Per record the writer looks up its block's descriptor, so the
/// 20-40 cycles of a 64-bit division are worth skipping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slots {
    /// `blocks - 1` when `blocks` is a power of two, else `u64::MAX`.
    mask: u64,
    blocks: std::num::NonZeroU64,
}

impl Slots {
    /// For a ring of `blocks` blocks (at least one: a checked geometry has
    /// [`crate::layout::MIN_BLOCKS`]).
    pub(crate) fn new(blocks: u32) -> Slots {
        let blocks = std::num::NonZeroU64::new(blocks as u64).unwrap_or(std::num::NonZeroU64::MIN);
        let mask = if blocks.is_power_of_two() {
            blocks.get() - 1
        } else {
            u64::MAX
        };
        Slots { mask, blocks }
    }

    /// `seq % blocks`.
    #[inline]
    pub(crate) fn index(&self, seq: u64) -> usize {
        if self.mask != u64::MAX {
            (seq & self.mask) as usize
        } else {
            (seq % self.blocks) as usize
        }
    }
}

/// A mapped ring. Cheap to clone (the mapping is shared); `Send + Sync`.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("logbus-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let ring = logbus_ring::Ring::open(dir.join("ring")).unwrap();
/// assert_eq!(ring.geometry().blocks, 512);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone)]
pub struct Ring {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    file: std::mem::ManuallyDrop<File>,
    fork_slot: Option<usize>,
    pub(crate) generation: u64,
    map: MmapRaw,
    pub(crate) header: StaticHeader,
    pub(crate) geo: Geometry,
    /// Sequence number to physical block index, without a division when the
    /// block count is a power of two (every ring made with default options).
    pub(crate) slots: Slots,
    /// Resource entries held by this handle: OFD locks taken through one
    /// descriptor do not exclude each other, so threads sharing a handle are
    /// kept apart here first.
    pub(crate) resources_held: Box<[AtomicBool]>,
    /// Whether a `Consumer` of this handle exists (same reason).
    pub(crate) consumer_taken: AtomicBool,
    /// Mapped read and write (false: [`Ring::open_read_only`]).
    pub(crate) writable: bool,
    /// This mapping's entry in the SIGBUS guard's table.
    guard_slot: Option<usize>,
    /// (device, inode) of the file when it was opened.
    pub(crate) id: (u64, u64),
    /// The file's owner (uid) when it was opened.
    owner: u32,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(slot) = self.guard_slot {
            crate::sigbus::unregister(slot);
        }
        if self.generation != fork::generation() && self.fork_slot.is_some() {
            // The atfork child handler already closed this descriptor in this
            // process; closing the number again could close someone else's file.
            return;
        }
        if let Some(slot) = self.fork_slot {
            fork::unregister(slot, self.file.as_raw_fd());
        }
        // SAFETY: dropped exactly once, here.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.file) };
    }
}

impl Ring {
    /// Opens the ring at `path`, creating it with default options if there is none.
    ///
    /// # Errors
    /// [`OpenError`] naming the file when it cannot be created or opened, or is
    /// not a valid ring.
    pub fn open(path: impl AsRef<Path>) -> Result<Ring, OpenError> {
        Ring::open_with(path, &RingOptions::default())
    }

    /// Opens the ring at `path`, creating it with `options` if there is none.
    ///
    /// # Errors
    /// As [`Ring::open`]; also [`OpenError::Geometry`] when `options` describe an
    /// impossible ring and a new one would have to be made.
    pub fn open_with(path: impl AsRef<Path>, options: &RingOptions) -> Result<Ring, OpenError> {
        let path = path.as_ref();
        for _ in 0..100 {
            match Ring::open_existing(path) {
                Err(OpenError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                other => return other,
            }
            match create(path, options) {
                Ok(ring) => return Ok(ring),
                Err(CreateError::Exists) => {}
                Err(CreateError::Open(e)) => return Err(e),
            }
        }
        Err(OpenError::Io {
            path: path.to_path_buf(),
            op: "create or open the ring",
            source: io::Error::other("the file keeps appearing and disappearing"),
        })
    }

    /// Creates a new ring at `path`; fails if a file is there already.
    ///
    /// # Errors
    /// [`OpenError::Io`] with kind `AlreadyExists` if the path is taken; others as
    /// for [`Ring::open_with`].
    pub fn create(path: impl AsRef<Path>, options: &RingOptions) -> Result<Ring, OpenError> {
        let path = path.as_ref();
        match create(path, options) {
            Ok(ring) => Ok(ring),
            Err(CreateError::Exists) => Err(OpenError::Io {
                path: path.to_path_buf(),
                op: "create the ring",
                source: io::Error::from(io::ErrorKind::AlreadyExists),
            }),
            Err(CreateError::Open(e)) => Err(e),
        }
    }

    /// Opens an existing ring for reading and writing; never creates one.
    ///
    /// # Errors
    /// [`OpenError`] naming the file; a missing file is `Io` with kind
    /// `NotFound`; a symlink, a file that is not regular, one writable by other
    /// users or owned by another user is [`OpenError::Untrusted`].
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Ring, OpenError> {
        Ring::open_checked(path.as_ref(), true, false)
    }

    /// Opens an existing ring for reading and writing whoever owns it: for a
    /// collector that serves several users' rings (`--ring-dir`), each owned by
    /// the user whose processes write it. Everything else is checked as in
    /// [`Ring::open_existing`] (no symlink, a regular file, not writable by
    /// other users): the owner alone can write the ring's bytes, so the owner
    /// alone can crash its producers. The collector survives a ring truncated
    /// under it only with [`crate::sigbus::install`].
    ///
    /// # Errors
    /// As [`Ring::open_existing`], but for the owner check.
    pub fn open_any_owner(path: impl AsRef<Path>) -> Result<Ring, OpenError> {
        Ring::open_checked(path.as_ref(), true, true)
    }

    /// Opens an existing ring read-only (a read-only mapping): enough for
    /// [`crate::Peeker`] and [`Ring::stats`], and all that a peer with read
    /// access alone can do. Writers and the consumer role need
    /// [`Ring::open_existing`]. A ring owned by another user is accepted
    /// here (reading it cannot change it), one writable by others is not.
    ///
    /// # Errors
    /// As [`Ring::open_existing`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Ring, OpenError> {
        Ring::open_checked(path.as_ref(), false, false)
    }

    fn open_checked(path: &Path, writable: bool, any_owner: bool) -> Result<Ring, OpenError> {
        let io_err = |op: &'static str| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, op, source }
        };
        // O_NOFOLLOW: a symlink planted at the path is refused (ELOOP), not
        // followed. O_NONBLOCK: a FIFO opens at once instead of waiting for a
        // writer, and is refused by the fstat check below.
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ELOOP) => OpenError::Untrusted {
                    path: path.to_path_buf(),
                    problem: "it is a symbolic link, which is never followed".into(),
                },
                _ => io_err("open")(source),
            })?;
        Ring::from_file(file, path, writable, any_owner)
    }

    /// Checks and maps the ring open as `file`, known as `path` (its name in
    /// messages and for [`Ring::is_current`]; for a ring being created, the
    /// name it is about to get: see `create`).
    fn from_file(
        file: File,
        path: &Path,
        writable: bool,
        any_owner: bool,
    ) -> Result<Ring, OpenError> {
        let io_err = |op: &'static str| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, op, source }
        };
        let meta = file.metadata().map_err(io_err("stat"))?;
        crate::trust::check_file(&meta, writable && !any_owner).map_err(|problem| {
            OpenError::Untrusted {
                path: path.to_path_buf(),
                problem,
            }
        })?;
        let id = (meta.dev(), meta.ino());
        let owner = meta.uid();
        let (header, geo) = read_header(&file, path, meta.len())?;
        let expected = geo.file_size();
        // Populated: every page is mapped now, so that no emit pays a
        // first-touch page fault (the space itself was allocated at create).
        let mut options = MmapOptions::new();
        options.len(expected as usize).populate();
        let map = if writable {
            options.map_raw(&file)
        } else {
            options.map_raw_read_only(&file)
        }
        .map_err(io_err("map"))?;
        let guard_slot = crate::sigbus::register(map.as_ptr() as usize, expected as usize);
        let fork_slot = fork::register(file.as_raw_fd());
        Ok(Ring {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                file: std::mem::ManuallyDrop::new(file),
                fork_slot,
                generation: fork::generation(),
                map,
                header,
                geo,
                slots: Slots::new(geo.blocks),
                resources_held: (0..RESOURCES).map(|_| AtomicBool::new(false)).collect(),
                consumer_taken: AtomicBool::new(false),
                writable,
                guard_slot,
                id,
                owner,
            }),
        })
    }

    /// Whether this handle maps the ring for writing (not [`Ring::open_read_only`]).
    pub fn is_writable(&self) -> bool {
        self.inner.writable
    }

    /// Whether an access to this ring's mapping faulted because the file was
    /// shrunk under it (only with [`crate::sigbus::install`]; without it the
    /// process would have died). The vanished range now reads as zeros: stop
    /// using the ring.
    pub fn faulted(&self) -> bool {
        self.inner.guard_slot.is_some_and(crate::sigbus::faulted)
    }

    /// Whether the ring's path still names the file this handle maps (false
    /// when it was deleted, or replaced by another file).
    pub fn is_current(&self) -> bool {
        std::fs::symlink_metadata(&self.inner.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.inner.id)
    }

    /// Whether some process has a [`crate::Writer`] of this ring (holds its
    /// writer liveness lock; a writer made through this very handle's
    /// descriptor does not count, and a process has one lock per ring
    /// whatever its number of writers). A ring whose path names another file
    /// gets no more records once this is false after [`Ring::retire`]: nobody
    /// can open it any more, and a handle opened before cannot make a writer.
    /// `true`
    /// when it cannot be told (a forked child's handle, a failed lock query).
    pub fn writers_alive(&self) -> bool {
        self.fd().is_none_or(crate::lock::process::any_alive)
    }

    /// Marks the ring retired (a collector of one path leaving the ring its
    /// path named before): [`Ring::writer`] refuses from now on
    /// ([`crate::WriterError::Retired`]), so that a process that opened the
    /// old file and makes a writer only now writes into the new ring instead
    /// of one nobody reads any more (only while the path names another file,
    /// or none: the word is shared memory, and a ring still at its path is
    /// written whatever it says). Call it before the last
    /// [`Ring::writers_alive`] that lets the ring go: with it, a `false` there
    /// means no record can still come.
    pub fn retire(&self) {
        // SeqCst: see `Ring::writer`; the writers' lock query that follows
        // must not be ordered before this store.
        self.words().retired.store(1, Ordering::SeqCst);
    }

    /// Whether a collector retired the ring ([`Ring::retire`]).
    pub fn is_retired(&self) -> bool {
        // Relaxed: a report only.
        self.words().retired.load(Ordering::Relaxed) != 0
    }

    /// The uid that owned the ring file when it was opened: the user whose
    /// processes write it (only they, and root, can).
    pub fn owner(&self) -> u32 {
        self.inner.owner
    }

    /// The ring file's (device, inode) when it was opened.
    pub fn file_id(&self) -> (u64, u64) {
        self.inner.id
    }

    /// The ring file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Block size and block count.
    pub fn geometry(&self) -> Geometry {
        self.inner.geo
    }

    /// The immutable header: geometry, policy, creation time.
    pub fn header(&self) -> &StaticHeader {
        &self.inner.header
    }

    /// Whether the file still has the size the mapping needs (and no access
    /// to it has faulted).
    ///
    /// # Errors
    /// [`OpenError::Truncated`] when it was shrunk, [`OpenError::Io`] when `fstat` fails.
    pub fn check_size(&self) -> Result<(), OpenError> {
        if self.faulted() {
            return Err(OpenError::Truncated {
                path: self.inner.path.clone(),
                actual: 0,
                expected: self.inner.geo.file_size(),
            });
        }
        let actual = self
            .inner
            .file
            .metadata()
            .map_err(|source| OpenError::Io {
                path: self.inner.path.clone(),
                op: "stat",
                source,
            })?
            .len();
        let expected = self.inner.geo.file_size();
        if actual < expected {
            return Err(OpenError::Truncated {
                path: self.inner.path.clone(),
                actual,
                expected,
            });
        }
        Ok(())
    }

    /// The descriptor for lock calls, or `None` in a forked child.
    pub(crate) fn fd(&self) -> Option<i32> {
        (self.inner.generation == fork::generation()).then(|| self.inner.file.as_raw_fd())
    }

    /// The ring's open file.
    pub(crate) fn file(&self) -> &File {
        &self.inner.file
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.inner.map.as_mut_ptr()
    }

    /// An atomic `u64` at `off` bytes into the file (header area only).
    pub(crate) fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= self.inner.geo.data_offset());
        // SAFETY: `off` is 8-aligned (the mapping is page-aligned) and inside the
        // header area of a mapping that lives as long as `self`. Other processes
        // touch these words only through atomic operations too.
        unsafe { &*(self.base().add(off) as *const AtomicU64) }
    }

    /// An atomic `u32` at `off` bytes into the file (header area only).
    pub(crate) fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off + 4 <= self.inner.geo.data_offset());
        // SAFETY: as in `u64_at`, with 4-byte alignment.
        unsafe { &*(self.base().add(off) as *const AtomicU32) }
    }

    /// The shared words of the header page.
    #[inline]
    pub(crate) fn words(&self) -> &SharedWords {
        // SAFETY: the struct lies at SHARED_WORDS_OFFSET inside the header page
        // (asserted at compile time in `layout`), is made only of atomics
        // (which any bit pattern a garbage writer leaves is valid for), and the
        // mapping lives as long as `self`.
        unsafe { &*(self.base().add(SHARED_WORDS_OFFSET) as *const SharedWords) }
    }

    /// The descriptor of the physical block that holds sequence number `seq`.
    #[inline]
    pub(crate) fn desc(&self, seq: u64) -> &BlockDesc {
        let index = self.inner.slots.index(seq);
        // SAFETY: `index < blocks`, so the descriptor (`BLOCK_DESC_BYTES`, 128)
        // lies inside the descriptor area of the mapping (checked geometry); it
        // is 64-aligned (the area starts on a page and entries are 128 bytes,
        // `BlockDesc` is `align(64)`) and made only of
        // atomics; the mapping lives as long as `self`.
        unsafe {
            &*(self
                .base()
                .add(self.inner.geo.descs_offset() + index * BLOCK_DESC_BYTES)
                as *const BlockDesc)
        }
    }

    /// Pointer to the first data byte of the block for sequence number `seq`.
    #[inline]
    pub(crate) fn block_data(&self, seq: u64) -> *mut u8 {
        let geo = &self.inner.geo;
        let index = self.inner.slots.index(seq);
        // SAFETY: `index < blocks`: the block lies inside the mapping.
        unsafe {
            self.base()
                .add(geo.data_offset() + index * geo.block_size as usize)
        }
    }

    /// `(head, alloc)`: the blocks not yet free are `head..alloc`. `None` when
    /// the two words cannot be a ring's (`alloc` behind `head`, more than the
    /// ring's blocks apart, or past `MAX_SEQ`): garbage, trusted by nobody;
    /// or when they kept moving while we looked ([`Ring::cursors`]).
    #[inline]
    pub(crate) fn live(&self) -> Option<(u64, u64)> {
        match self.cursors() {
            Cursors::Live(h, a) => Some((h, a)),
            Cursors::Impossible | Cursors::Moving => None,
        }
    }

    /// `head` and `alloc` as they were at one moment, judged.
    ///
    /// Acquire (all): `alloc` first, so that every block below it is claimed
    /// and a writer's records in its older blocks were committed before it
    /// claimed a newer one (readers keep each writer's order by reading in
    /// sequence order); `head` pairs with the Release of whoever freed blocks
    /// (SYNC POINT B: a claimer reuses a block only after its reader is done).
    /// Then `alloc` again: the two loads are not one snapshot, and between
    /// them blocks may be claimed and freed (evictors free without the
    /// consumer), so that `head` is past the `alloc` loaded first, which no
    /// ring has at any one moment. When `alloc` is unchanged, `head` was read
    /// while `alloc` had that value: the freer that moved `head` there had
    /// seen those blocks claimed (their claims happen before its CAS, which
    /// our Acquire load reads), so `head <= alloc`; and `alloc`'s claimer had
    /// checked its distance to a `head` no later than ours, so the two are at
    /// most the ring's blocks apart. A pair judged impossible is then truly
    /// one no ring can have (overwritten state, which the consumer repairs),
    /// never a torn look at a healthy ring.
    pub(crate) fn cursors(&self) -> Cursors {
        let w = self.words();
        let mut a = w.alloc.load(Ordering::Acquire);
        for _ in 0..CURSOR_TRIES {
            let h = w.head.load(Ordering::Acquire);
            let again = w.alloc.load(Ordering::Acquire);
            if again == a {
                let sane =
                    a >= h && a - h <= self.inner.geo.blocks as u64 && a <= crate::block::MAX_SEQ;
                return if sane {
                    Cursors::Live(h, a)
                } else {
                    Cursors::Impossible
                };
            }
            a = again;
            std::hint::spin_loop();
        }
        Cursors::Moving
    }

    /// The consumer pid as written in the header (0: none recorded).
    pub(crate) fn consumer_pid_word(&self) -> &AtomicU32 {
        &self.words().consumer_pid
    }
}

/// Looks at `head` and `alloc` before [`Ring::cursors`] gives up on a ring
/// whose `alloc` keeps moving (a claim takes far longer than a look, so a
/// healthy ring is seen still well before this; garbage written in a loop may
/// not be).
const CURSOR_TRIES: usize = 64;

/// What [`Ring::cursors`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cursors {
    /// `(head, alloc)` at one moment: the blocks `head..alloc` are in use.
    Live(u64, u64),
    /// A pair no ring can have (overwritten).
    Impossible,
    /// `alloc` changed under every look.
    Moving,
}

enum CreateError {
    Exists,
    Open(OpenError),
}

/// Reads and checks the header of the ring open as `file` (`actual` bytes
/// long, named `path` in errors): its magic, layout version, geometry and
/// overflow policy, each with its own error.
fn read_header(
    file: &File,
    path: &Path,
    actual: u64,
) -> Result<(StaticHeader, Geometry), OpenError> {
    let static_len = std::mem::size_of::<StaticHeader>() as u64;
    if actual < 8 {
        return Err(OpenError::NotARing {
            path: path.to_path_buf(),
        });
    }
    let mut head = [0u8; 128];
    let n = std::os::unix::fs::FileExt::read_at(file, &mut head, 0).map_err(|source| {
        OpenError::Io {
            path: path.to_path_buf(),
            op: "read",
            source,
        }
    })?;
    if head[..8] != MAGIC {
        return Err(OpenError::NotARing {
            path: path.to_path_buf(),
        });
    }
    if (n as u64) < static_len {
        return Err(OpenError::Truncated {
            path: path.to_path_buf(),
            actual,
            expected: HEADER_BYTES as u64,
        });
    }
    let header: StaticHeader = bytemuck::pod_read_unaligned(&head);
    if header.version != VERSION {
        return Err(OpenError::Version {
            path: path.to_path_buf(),
            found: header.version,
        });
    }
    let geo = check_geometry(&header, path, actual)?;
    Ok((header, geo))
}

/// Whether `header`'s geometry and overflow policy are a ring's, and the file
/// (`actual` bytes) holds all of it.
fn check_geometry(header: &StaticHeader, path: &Path, actual: u64) -> Result<Geometry, OpenError> {
    let geo = Geometry {
        block_size: header.block_size,
        blocks: header.blocks,
    };
    geo.check().map_err(|problem| OpenError::Geometry {
        path: path.to_path_buf(),
        problem,
    })?;
    let expected = geo.file_size();
    if header.file_size != expected {
        return Err(OpenError::Geometry {
            path: path.to_path_buf(),
            problem: format!(
                "header says {} bytes, its geometry needs {expected}",
                header.file_size
            ),
        });
    }
    if actual < expected {
        return Err(OpenError::Truncated {
            path: path.to_path_buf(),
            actual,
            expected,
        });
    }
    if header.protect_severity > 24 || header.watermarks.iter().any(|&w| w == 0 || w > 100) {
        return Err(OpenError::Geometry {
            path: path.to_path_buf(),
            problem: "overflow policy out of range".into(),
        });
    }
    Ok(geo)
}

/// Makes a ring at `path` and opens it. Everything that can fail (the mode,
/// the space, the header, every check an opener makes, the mapping) is done
/// on the file under a temporary name that nobody else uses; only then does
/// it get its name (`link`, which fails if the name exists). So a create that
/// fails leaves no file, and never removes one it did not make.
fn create(path: &Path, options: &RingOptions) -> Result<Ring, CreateError> {
    let geo = check_options(path, options)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        crate::clock::now_ns()
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(options.mode)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(create_err(path, "create the ring"))?;
    let result = (|| {
        fill(&file, path, geo, options)?;
        // Every check an opener would make (who may write it: a group-writable
        // mode needs the file's group trusted), and the mapping, before the
        // file gets its name.
        let own = file
            .try_clone()
            .map_err(create_err(path, "create the ring"))?;
        let ring = Ring::from_file(own, path, true, false).map_err(CreateError::Open)?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(ring),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(CreateError::Exists),
            Err(e) => Err(create_err(path, "name the ring")(e)),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// What no ring may be made with: a geometry that is not a ring's, a mode
/// that lets every user write it. Returns the geometry.
fn check_options(path: &Path, options: &RingOptions) -> Result<Geometry, CreateError> {
    let geo = options.geometry();
    geo.check().map_err(|problem| {
        CreateError::Open(OpenError::Geometry {
            path: path.to_path_buf(),
            problem,
        })
    })?;
    if options.mode & 0o002 != 0 {
        return Err(CreateError::Open(OpenError::Untrusted {
            path: path.to_path_buf(),
            problem: format!(
                "mode {:04o} would let every user write it (and crash its users)",
                options.mode
            ),
        }));
    }
    Ok(geo)
}

/// The error of a failed `op` on the ring being made at `path`.
fn create_err<'p>(path: &'p Path, op: &'static str) -> impl FnOnce(io::Error) -> CreateError + 'p {
    move |source| {
        CreateError::Open(OpenError::Io {
            path: path.to_path_buf(),
            op,
            source,
        })
    }
}

/// Gives the new (unnamed) ring file `file` its mode, all its space and its
/// header.
fn fill(file: &File, path: &Path, geo: Geometry, options: &RingOptions) -> Result<(), CreateError> {
    // The umask may have narrowed the mode; the caller asked for this one.
    file.set_permissions(std::fs::Permissions::from_mode(options.mode))
        .map_err(create_err(path, "set the ring's mode"))?;
    // Allocate every byte now: a ring that does not fit its filesystem is
    // an error here, not a SIGBUS in a producer later.
    // SAFETY: `file` is an open descriptor; posix_fallocate only reads its arguments.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, geo.file_size() as libc::off_t) };
    if rc != 0 {
        return Err(create_err(path, "allocate the ring's space")(
            io::Error::from_raw_os_error(rc),
        ));
    }
    let header = StaticHeader {
        magic: MAGIC,
        version: VERSION,
        block_size: geo.block_size,
        blocks: geo.blocks,
        max_message: options.max_message.max(64),
        protect_severity: options.protect_severity.min(24),
        watermarks: options.watermarks.map(|w| w.clamp(1, 100)),
        _reserved0: 0,
        wait_ms: options.wait_ms,
        _reserved1: 0,
        created_ns: crate::clock::now_ns(),
        file_size: geo.file_size(),
        _reserved: [0; 9],
    };
    // The new file is all zeros (every cursor and counter at 0), so the
    // header is the only thing to write. pwrite, not the mapping: nobody else
    // can see this file yet.
    std::os::unix::fs::FileExt::write_all_at(file, bytemuck::bytes_of(&header), 0)
        .map_err(create_err(path, "write the ring header"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Slots;

    /// The mask and the division agree with `%` for power-of-two block
    /// counts and others, at the wrap of the 32-bit tags and far beyond.
    #[test]
    fn slots_index_is_seq_modulo_blocks() {
        for blocks in [4u32, 5, 7, 512, 513, 1000, 1 << 20] {
            let slots = Slots::new(blocks);
            for seq in [
                0u64,
                1,
                3,
                511,
                512,
                513,
                u32::MAX as u64,
                1 << 40,
                (1 << 62) - 1,
            ] {
                assert_eq!(
                    slots.index(seq),
                    (seq % blocks as u64) as usize,
                    "{blocks} {seq}"
                );
            }
        }
    }
}
