//! The on-disk (in-memory) layout of a ring file, version 6 (6: a block
//! descriptor's `owner` word names the process of one opening of the block,
//! tagged with the block's sequence number, where 5 had a pid and a tid;
//! `reserve` counts openings; a record the consumer skipped is marked in its
//! stamp word; 5: per sink
//! slot and level, the records released to the consumer's memory and not
//! finished, `SharedWords::ledger`; 4: each resource entry holds its process's uid and per-level counts of records
//! written and dropped; 3: the eviction note holds 511 block ends of 4 bytes,
//! where version 2 held 32 of 8).
//!
//! Everything is little-endian, every offset is from the start of the file, and
//! nothing in the file is a pointer. Another language can write records by
//! following this page and the protocol documented at the top of `src/block.rs`.
//!
//! ```text
//! offset 0           +--------------------------------------------------+
//!                    | StaticHeader (Pod, 128 B): magic "LOGBUS\0R",     |
//!                    |   version 6, geometry, created_ns, protect level, |
//!                    |   per-level watermarks, wait_ms. Written once,    |
//!                    |   before the file gets its name; read-only after. |
//! 128                | SharedWords: head, alloc, the futex words, the    |
//!                    |   counters (see the struct), one cache line each  |
//!                    |   for the words written on hot paths              |
//! 4096               +--------------------------------------------------+
//!                    | resource table: RESOURCES entries x 512 B         |
//!                    |   (see crate::resource)                           |
//! 4096 + 32 KiB      +--------------------------------------------------+
//!                    | block descriptors: blocks x 128 B (BlockDesc)      |
//! data_offset        +--------------------------------------------------+
//!                    | block 0: block_size bytes                          |
//!                    | block 1: ...                                       |
//! file end           +--------------------------------------------------+
//! ```
//!
//! A record starts on an 8-byte boundary inside one block and never crosses
//! the block's end. A record is:
//!
//! ```text
//! +---------------- RecordHeader, 64 bytes ----------------+
//! | stamp u64 | time_ns u64 | trace_id [16] | span_id [8]   |
//! | pid u32 | tid u32 | len u32 | msg_len u32               |
//! | target_len u16 | nfields u16 | severity u8 | flags u8   |
//! | trace_flags u8 | resource u8                            |
//! +---------------------------------------------------------+
//! | target (UTF-8, target_len bytes)                        |
//! | message (UTF-8, msg_len bytes)                          |
//! | nfields x field                                          |
//! +---------------------------------------------------------+
//! field = key_len u8 | kind u8 | key (UTF-8) | value
//! value = kind 1 (string): len u16 | UTF-8 bytes
//!         kind 2 (i64), 3 (u64), 4 (f64): 8 bytes
//!         kind 5 (bool): 1 byte, 0 or 1
//! ```
//!
//! `stamp` is the record's commit word: the low 32 bits of the sequence number
//! of the block it was written in, then `len` (`seq << 32 | len`). It is stored
//! last, with Release; until a reader finds that exact value the bytes are not
//! a record (they may be a record of an earlier use of the block, or half
//! written).

use std::mem::offset_of;
use std::sync::atomic::{AtomicU32, AtomicU64};

use bytemuck::{Pod, Zeroable};

use crate::level::LEVELS;

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"LOGBUS\0R";
/// The layout version this crate reads and writes.
pub const VERSION: u32 = 6;

/// What the binaries' `--version` prints: `program_version` and the ring
/// layout version this build reads and writes (a ring of another layout
/// version is refused with one line). Made once per process.
pub fn version_line(program_version: &'static str) -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| format!("{program_version} (ring layout version {VERSION})"))
}

/// Bytes before the resource table.
pub const HEADER_BYTES: usize = 4096;
/// Entries in the resource table.
pub const RESOURCES: usize = 64;
/// Bytes per resource entry.
pub const RESOURCE_BYTES: usize = 512;
/// Byte offsets inside one resource entry (see `resource.rs`).
pub mod resource_entry {
    /// u32, atomic: 0 never used, 1 being written, 2 ready.
    pub const STATE: usize = 0;
    /// u32: the writer's pid (in its own pid namespace).
    pub const PID: usize = 4;
    /// u64, atomic: bumped on every (re)write.
    pub const GENERATION: usize = 8;
    /// u64: when the entry was last written (ns since the Unix epoch).
    pub const REGISTERED_NS: usize = 16;
    /// u64: inode of the writer's pid namespace (`/proc/self/ns/pid`).
    pub const PID_NS: usize = 24;
    /// u64, atomic: 0 while the owner may be alive; else 1 + the ring's
    /// `alloc` when a later registrant found the owner gone. The entry may be
    /// reused once `head` reaches that `alloc`: every record of the owner is
    /// in a block before it, so none is unread any more.
    pub const RETIRE_AT: usize = 32;
    /// u32: the writer's real uid.
    pub const UID: usize = 40;
    /// The strings: service, version, host, command, each a u16 length +
    /// UTF-8, up to [`COUNTS`].
    pub const BODY: usize = 48;
    /// A cache line of counters, `[u64; LEVELS]` each, atomic, written by the
    /// owner's writers only (see `crate::resource`): records written...
    pub const WRITTEN: usize = 384;
    /// ... and records dropped by the overflow policy, per level.
    pub const DROPPED: usize = WRITTEN + 8 * crate::level::LEVELS;
    /// Where the counters start (and the strings must end).
    pub const COUNTS: usize = WRITTEN;
}
const _: () = assert!(resource_entry::DROPPED + 8 * LEVELS <= RESOURCE_BYTES);
// The counters start a cache line (entries are 512-aligned after the header).
const _: () = assert!((HEADER_BYTES + resource_entry::WRITTEN) & 63 == 0);
/// Bytes per block descriptor.
pub const BLOCK_DESC_BYTES: usize = 128;
/// Smallest and largest block sizes; the block size must be a power of two.
pub const MIN_BLOCK: u32 = 4096;
/// See [`MIN_BLOCK`].
pub const MAX_BLOCK: u32 = 1 << 24;
/// The fewest and most blocks a ring may have.
pub const MIN_BLOCKS: u32 = 4;
/// See [`MIN_BLOCKS`].
pub const MAX_BLOCKS: u32 = 1 << 20;
/// Default ring data size: 16 MiB.
pub const DEFAULT_SIZE: u64 = 16 << 20;
/// Default block size: 32 KiB (512 blocks in the default ring).
pub const DEFAULT_BLOCK_SIZE: u32 = 32 << 10;
/// Longest message kept by default; longer ones are cut and flagged truncated.
pub const DEFAULT_MAX_MESSAGE: u32 = 16 * 1024;
/// Sinks of the consumer whose progress the ring keeps (per block).
pub const SINK_SLOTS: usize = 8;
/// Most blocks after the oldest one that an eviction rewrites: the whole
/// default ring (512 blocks), so that a protected record reaches the oldest
/// unread lower-level record behind any amount of kept ones.
pub(crate) const MAX_SPAN: usize = 511;
/// Records are placed on multiples of this many bytes.
pub const ALIGN: usize = 8;

/// Byte offsets locked (never written) to signal liveness: the kernel drops an
/// open-file-description lock the moment its last holder dies.
pub(crate) const LOCK_CONSUMER: i64 = 1 << 40;
pub(crate) const LOCK_RESOURCE_BASE: i64 = (1 << 40) + 2048;
/// A writing process locks `LOCK_PROCESS_BASE + pid` for as long as it lives.
pub(crate) const LOCK_PROCESS_BASE: i64 = 1 << 41;

/// Record flags.
pub mod flags {
    /// The message, the target or a field was cut to fit.
    pub const TRUNCATED: u8 = 1;
    /// `trace_id` holds a trace id.
    pub const HAS_TRACE: u8 = 2;
    /// `span_id` holds a span id.
    pub const HAS_SPAN: u8 = 4;
}

/// Field value kinds.
pub mod kind {
    /// UTF-8 string, `u16` length first.
    pub const STR: u8 = 1;
    /// Signed 64-bit integer.
    pub const I64: u8 = 2;
    /// Unsigned 64-bit integer.
    pub const U64: u8 = 3;
    /// IEEE 754 double.
    pub const F64: u8 = 4;
    /// Boolean, one byte.
    pub const BOOL: u8 = 5;
}

/// The part of the header that never changes after creation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct StaticHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: u32,
    /// Bytes per block, a power of two from [`MIN_BLOCK`] to [`MAX_BLOCK`].
    pub block_size: u32,
    /// Number of blocks, from [`MIN_BLOCKS`] to [`MAX_BLOCKS`].
    pub blocks: u32,
    /// Longest message stored whole.
    pub max_message: u32,
    /// Records at or above this severity are protected by the overflow policy.
    pub protect_severity: u8,
    /// Per level: the percentage of the ring's blocks that records of that
    /// level may fill.
    pub watermarks: [u8; 6],
    /// Reserved, zero.
    pub _reserved0: u8,
    /// Lossless mode: how long a producer that finds no room waits for the
    /// consumer to free some, in ms (0: never wait).
    pub wait_ms: u32,
    /// Reserved, zero.
    pub _reserved1: u32,
    /// Creation time, ns since the Unix epoch.
    pub created_ns: u64,
    /// The file size this geometry implies.
    pub file_size: u64,
    /// Reserved, zero.
    pub _reserved: [u64; 9],
}

const _: () = assert!(std::mem::size_of::<StaticHeader>() == 128);

/// The words of the header page that change, at offset 128. Each word written
/// on a hot path has a cache line of its own.
///
/// | word | writers | readers |
/// |---|---|---|
/// | `consumer_pid` | the consumer (for messages only) | stat, refused consumers |
/// | `head` | the consumer (frees blocks), an evicting producer (CAS) | claiming producers |
/// | `alloc` | claiming producers (CAS) | the consumer, peekers |
/// | `sleeping` | the consumer (futex word: 1 while it sleeps) | producers after a reserve |
/// | `space`, `waiters` | the consumer (`space` futex word), waiting producers | |
/// | `dropped`, `evicted`, `torn`, `waits`, `wait_timeouts`, `wakeups`, `closes` | anyone, `fetch_add` (cold paths only) | stat, writers |
/// | `delivered`, `invalid` | the consumer only | stat |
/// | `evict_owner`, `evict_*`, `lost` | the producer holding the eviction role | whoever reaps a dead one |
/// | `sinks` | the consumer | the consumer |
/// | `retired` | a collector leaving a replaced ring ([`crate::Ring::retire`]) | [`crate::Ring::writer`] |
/// | `ledger` | the consumer's process: its reader adds, its sinks subtract (RMW); the next consumer takes what is left | the next consumer (`crate::sink_ledger`) |
#[repr(C)]
pub(crate) struct SharedWords {
    pub consumer_pid: AtomicU32,
    _p0: [u8; 60],
    /// Sequence number of the oldest block not yet free.
    pub head: AtomicU64,
    _p1: [u8; 56],
    /// Sequence number the next claimed block gets.
    pub alloc: AtomicU64,
    _p2: [u8; 56],
    /// 1 while the consumer sleeps (or is about to), else 0: a futex word.
    pub sleeping: AtomicU32,
    _p3: [u8; 60],
    /// Bumped whenever the consumer frees blocks: a futex word for waiters.
    pub space: AtomicU32,
    /// Producers waiting for space right now.
    pub waiters: AtomicU32,
    _p4: [u8; 56],
    pub dropped: [AtomicU64; LEVELS],
    pub evicted: [AtomicU64; LEVELS],
    pub torn: [AtomicU64; LEVELS],
    /// Records a producer waited for space for, and those of them whose wait
    /// ran out (they then went through the overflow policy).
    pub waits: AtomicU64,
    pub wait_timeouts: AtomicU64,
    /// Times a producer woke the sleeping consumer.
    pub wakeups: AtomicU64,
    /// Blocks closed by writers that went away (threads that exited): a hint
    /// for writers looking for a block to adopt.
    pub closes: AtomicU64,
    _p5: [u8; 16],
    pub delivered: [AtomicU64; LEVELS],
    pub invalid: AtomicU64,
    /// 1 once a collector leaving this ring (its path names another file
    /// now) retired it: no new writer is made in it. In what was padding
    /// (zero in every ring ever created), so no layout version change.
    pub retired: AtomicU32,
    _p6: [u8; 4],
    /// `pid << 32 | phase` of the producer evicting right now, or 0
    /// (`crate::evict`).
    pub evict_owner: AtomicU64,
    /// The eviction's note: the oldest block it frees (sequence number) ...
    pub evict_block: AtomicU64,
    /// ... for a merge, how many blocks after it take its kept records and
    /// where each of them ends once they are moved ...
    pub evict_span: AtomicU64,
    /// ... how many of the oldest blocks it frees ...
    pub evict_freed: AtomicU64,
    pub evict_ends: [AtomicU32; MAX_SPAN],
    /// ... and per level the values `evicted` and `lost` reach when it is done
    /// (targets, so that finishing twice changes nothing).
    pub evict_victims: [AtomicU64; LEVELS],
    pub evict_lost: [AtomicU64; LEVELS],
    /// Per level: protected records lost because their evicting producer died
    /// while moving them (written only by the holder of the eviction role).
    pub lost: [AtomicU64; LEVELS],
    /// The consumer's sink slots: a hash of each sink's name (0: free).
    /// Written by the consumer only.
    pub sinks: [AtomicU64; SINK_SLOTS],
    /// Per sink slot and level: records the consumer committed (or is
    /// about to) while that sink still held them in memory only, not yet
    /// written; what a killed consumer leaves here was lost with it
    /// (`crate::sink_ledger`).
    pub ledger: [[AtomicU64; LEVELS]; SINK_SLOTS],
}

pub(crate) const SHARED_WORDS_OFFSET: usize = 128;
const _: () = assert!(SHARED_WORDS_OFFSET + std::mem::size_of::<SharedWords>() <= HEADER_BYTES);
const _: () = assert!(offset_of!(SharedWords, head) % 64 == 0);
const _: () = assert!(offset_of!(SharedWords, alloc) % 64 == 0);
const _: () = assert!(offset_of!(SharedWords, sleeping) % 64 == 0);
const _: () = assert!(offset_of!(SharedWords, dropped) % 64 == 0);
const _: () = assert!(offset_of!(SharedWords, delivered) % 64 == 0);

/// One block's descriptor: the packed words of `crate::block` and who claimed it.
#[repr(C, align(64))]
pub(crate) struct BlockDesc {
    /// [`crate::block::Reserve`]: sequence number, CLOSED, reserved end, level
    /// of the last reservation. Producers and the consumer, CAS only.
    pub reserve: AtomicU64,
    /// [`crate::block::Claim`]: sequence number, EVICTING/EVICTED, claimed
    /// end. The consumer and an evicting producer, CAS only.
    pub claim: AtomicU64,
    /// Committed end (`seq << 32 | offset`): the consumer only. Where a new
    /// consumer resumes.
    pub done: AtomicU64,
    /// [`crate::block::Owner`]: sequence number, opening, and the process
    /// writing the block in that opening (its claimer, or the writer that
    /// adopted it since), for the consumer's liveness check. CAS only.
    pub owner: AtomicU64,
    _pad: [u8; 32],
    /// Per sink slot (see `SharedWords::sinks`): `seq << 32 | end`, the end of
    /// what that sink of the consumer has finished in this block. Written by
    /// the consumer's process (a mark of an earlier use of the block carries
    /// another sequence number, and counts for nothing); a restarted
    /// consumer skips, for each sink, what it finished before.
    pub marks: [AtomicU64; SINK_SLOTS],
}

const _: () = assert!(std::mem::size_of::<BlockDesc>() == BLOCK_DESC_BYTES);

impl BlockDesc {
    /// Closes the block if its `reserve` word is still `r` (step 3 of
    /// `crate::block`): its owner, the consumer or an evictor. Returns
    /// whether this call closed it. AcqRel, as every CAS of `reserve`: a close
    /// and a reservation never both win; a failure means somebody reserved or
    /// closed first.
    pub(crate) fn close(&self, r: crate::block::Reserve) -> bool {
        self.reserve
            .compare_exchange(
                r.pack(),
                r.closed().pack(),
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
    }
}

/// The fixed part of every record (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RecordHeader {
    /// Commit word: `block sequence number (low 32 bits) << 32 | len`.
    pub stamp: u64,
    /// Time of the event, ns since the Unix epoch.
    pub time_ns: u64,
    /// W3C trace id; meaningful only with [`flags::HAS_TRACE`].
    pub trace_id: [u8; 16],
    /// W3C span id; meaningful only with [`flags::HAS_SPAN`].
    pub span_id: [u8; 8],
    /// Producer process id.
    pub pid: u32,
    /// Producer thread id.
    pub tid: u32,
    /// Total bytes of the record, header included (not rounded).
    pub len: u32,
    /// Bytes of the message.
    pub msg_len: u32,
    /// Bytes of the target.
    pub target_len: u16,
    /// Number of fields.
    pub nfields: u16,
    /// OpenTelemetry severity number 1-24.
    pub severity: u8,
    /// [`flags`].
    pub flags: u8,
    /// W3C trace flags (bit 0: sampled).
    pub trace_flags: u8,
    /// Resource table index + 1, or 0 when the producer registered none.
    pub resource: u8,
}

/// Size of [`RecordHeader`].
pub const RECORD_HEADER: usize = 64;
const _: () = assert!(std::mem::size_of::<RecordHeader>() == RECORD_HEADER);

/// Geometry of a ring, as stored in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per block.
    pub block_size: u32,
    /// Number of blocks.
    pub blocks: u32,
}

impl Geometry {
    /// Offset of the first block descriptor.
    pub fn descs_offset(&self) -> usize {
        HEADER_BYTES + RESOURCES * RESOURCE_BYTES
    }

    /// Offset of block 0's data.
    pub fn data_offset(&self) -> usize {
        self.descs_offset() + self.blocks as usize * BLOCK_DESC_BYTES
    }

    /// Bytes of record data in the ring.
    pub fn data_bytes(&self) -> u64 {
        self.blocks as u64 * self.block_size as u64
    }

    /// Total file size.
    pub fn file_size(&self) -> u64 {
        self.data_offset() as u64 + self.data_bytes()
    }

    /// The largest record (in bytes) a producer writes: a whole block.
    pub fn max_record_bytes(&self) -> usize {
        self.block_size as usize
    }

    /// Checks the invariants every other module relies on.
    pub fn check(&self) -> Result<(), String> {
        if self.block_size < MIN_BLOCK
            || self.block_size > MAX_BLOCK
            || !self.block_size.is_power_of_two()
        {
            return Err(format!(
                "block size {} is not a power of two between {MIN_BLOCK} and {MAX_BLOCK}",
                self.block_size
            ));
        }
        if self.blocks < MIN_BLOCKS || self.blocks > MAX_BLOCKS {
            return Err(format!(
                "{} blocks is not between {MIN_BLOCKS} and {MAX_BLOCKS}",
                self.blocks
            ));
        }
        Ok(())
    }
}

/// Rounds a record length up to its placement in a block.
#[inline]
pub(crate) fn placed(len: usize) -> usize {
    (len + ALIGN - 1) & !(ALIGN - 1)
}
