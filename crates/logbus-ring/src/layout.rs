//! The on-disk (in-memory) layout of a ring file, version 1.
//!
//! Everything is little-endian, every offset is from the start of the file, and
//! nothing in the file is a pointer. Another language can write records by
//! following this page and the protocol documented at the top of `src/lane.rs`.
//!
//! ```text
//! offset 0           +--------------------------------------------------+
//!                    | StaticHeader (Pod, 128 B): magic "LOGBUS\0R",     |
//!                    |   version, geometry, created_ns, protect level,   |
//!                    |   per-level watermarks. Written once, before the  |
//!                    |   file gets its name; read-only afterwards.       |
//! 128                | consumer_pid: u32 (atomic), written by the holder  |
//!                    |   of the consumer role, for messages only         |
//! 256                | lane_shortage[6]: u64 (atomic), records dropped   |
//!                    |   because every lane was held by a live producer  |
//! 4096               +--------------------------------------------------+
//!                    | resource table: RESOURCES entries x 512 B         |
//!                    |   (see crate::resource)                           |
//! 4096 + 32 KiB      +--------------------------------------------------+
//!                    | lane headers: lanes x 512 B                        |
//!                    |   [0,256)   producer side: tail, pending op,       |
//!                    |             owner pid/tid, published/dropped/      |
//!                    |             evicted/torn per level                 |
//!                    |   [256,384) cursor: head, read, evicting flag      |
//!                    |   [384,512) consumer side: delivered per level,    |
//!                    |             invalid records met in this lane,      |
//!                    |             lost per level (written by reapers)    |
//! data_offset        +--------------------------------------------------+
//!                    | lane 0: slots_per_lane x slot_size bytes           |
//!                    | lane 1: ...                                        |
//! file end           +--------------------------------------------------+
//! ```
//!
//! A record starts on a slot boundary and covers `ceil(len / slot_size)` slots
//! of one lane; it never wraps around the end of the lane (a padding record
//! fills the rest of the lane instead). A record is:
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
//! `stamp` is the lane position (in slots, counted from the lane's creation) of
//! the record's first slot: a reader that finds another stamp at a position
//! knows the bytes are not the record it expects. `severity` 0 marks a padding
//! record (flag `PAD`), which readers skip silently.

use bytemuck::{Pod, Zeroable};

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"LOGBUS\0R";
/// The layout version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Bytes before the resource table.
pub const HEADER_BYTES: usize = 4096;
/// Entries in the resource table.
pub const RESOURCES: usize = 64;
/// Bytes per resource entry.
pub const RESOURCE_BYTES: usize = 512;
/// Bytes per lane header.
pub const LANE_HEADER_BYTES: usize = 512;
/// The most lanes a ring may have (lane numbers must fit the lock area and `u16`).
pub const MAX_LANES: u32 = 1024;
/// Smallest and largest slot sizes; the slot size must be a power of two.
pub const MIN_SLOT: u32 = 64;
/// See [`MIN_SLOT`].
pub const MAX_SLOT: u32 = 65536;
/// Default geometry: 64 Ki slots of 256 bytes in 32 lanes (16 MiB, 512 KiB a lane).
pub const DEFAULT_SLOTS: u32 = 65536;
/// See [`DEFAULT_SLOTS`].
pub const DEFAULT_SLOT_SIZE: u32 = 256;
/// See [`DEFAULT_SLOTS`].
pub const DEFAULT_LANES: u32 = 32;
/// Longest message kept by default; longer ones are cut and flagged truncated.
pub const DEFAULT_MAX_MESSAGE: u32 = 16 * 1024;

/// Offsets inside the header page.
pub(crate) const OFF_CONSUMER_PID: usize = 128;
pub(crate) const OFF_LANE_SHORTAGE: usize = 256;

/// Lane header offsets (from the lane header's start).
pub(crate) const LANE_TAIL: usize = 0;
pub(crate) const LANE_PENDING_POS: usize = 8;
pub(crate) const LANE_PENDING_INFO: usize = 16;
pub(crate) const LANE_OWNER_PID: usize = 24;
pub(crate) const LANE_OWNER_TID: usize = 28;
pub(crate) const LANE_PUBLISHED: usize = 32;
pub(crate) const LANE_DROPPED: usize = 80;
pub(crate) const LANE_EVICTED: usize = 128;
pub(crate) const LANE_TORN: usize = 176;
pub(crate) const LANE_PENDING_EXTRA: usize = 224;
pub(crate) const LANE_CURSOR: usize = 256;
pub(crate) const LANE_DELIVERED: usize = 384;
pub(crate) const LANE_INVALID: usize = 432;
pub(crate) const LANE_LOST: usize = 440;

/// Byte offsets locked (never written) to signal liveness: the kernel drops an
/// open-file-description lock the moment its last holder dies.
pub(crate) const LOCK_CONSUMER: i64 = 1 << 40;
pub(crate) const LOCK_LANE_BASE: i64 = (1 << 40) + 4096;
pub(crate) const LOCK_RESOURCE_BASE: i64 = (1 << 40) + 2048;

/// Record flags.
pub mod flags {
    /// The message, the target or a field was cut to fit.
    pub const TRUNCATED: u8 = 1;
    /// `trace_id` holds a trace id.
    pub const HAS_TRACE: u8 = 2;
    /// `span_id` holds a span id.
    pub const HAS_SPAN: u8 = 4;
    /// A padding record: fills the end of a lane, carries nothing.
    pub const PAD: u8 = 8;
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
    /// Bytes per slot, a power of two from 64 to 65536.
    pub slot_size: u32,
    /// Slots in each lane, a power of two.
    pub slots_per_lane: u32,
    /// Number of lanes, a power of two, at most [`MAX_LANES`].
    pub lanes: u32,
    /// Longest message stored whole.
    pub max_message: u32,
    /// Records at or above this severity are protected by the overflow policy.
    pub protect_severity: u8,
    /// Per level: the percentage of a lane that records of that level may fill.
    pub watermarks: [u8; 6],
    /// Reserved, zero.
    pub _reserved0: u8,
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

/// The fixed part of every record (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RecordHeader {
    /// Lane position of the record's first slot.
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
    /// Total bytes of the record, header included.
    pub len: u32,
    /// Bytes of the message.
    pub msg_len: u32,
    /// Bytes of the target.
    pub target_len: u16,
    /// Number of fields.
    pub nfields: u16,
    /// OpenTelemetry severity number 1-24; 0 only in a padding record.
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
    /// Bytes per slot.
    pub slot_size: u32,
    /// Slots in each lane.
    pub slots_per_lane: u32,
    /// Number of lanes.
    pub lanes: u32,
}

impl Geometry {
    /// Offset of the first lane header.
    pub fn lane_headers_offset(&self) -> usize {
        HEADER_BYTES + RESOURCES * RESOURCE_BYTES
    }

    /// Offset of lane 0's data.
    pub fn data_offset(&self) -> usize {
        self.lane_headers_offset() + self.lanes as usize * LANE_HEADER_BYTES
    }

    /// Bytes of one lane's data.
    pub fn lane_bytes(&self) -> usize {
        self.slots_per_lane as usize * self.slot_size as usize
    }

    /// Total file size.
    pub fn file_size(&self) -> u64 {
        self.data_offset() as u64 + self.lanes as u64 * self.lane_bytes() as u64
    }

    /// Total slots in the ring.
    pub fn slots(&self) -> u64 {
        self.lanes as u64 * self.slots_per_lane as u64
    }

    /// The largest record (in bytes) a producer writes: a quarter of a lane, so
    /// that one huge record can never monopolise a lane.
    pub fn max_record_bytes(&self) -> usize {
        (self.lane_bytes() / 4).min(u32::MAX as usize)
    }

    /// Checks the invariants every other module relies on.
    pub fn check(&self) -> Result<(), String> {
        if self.slot_size < MIN_SLOT
            || self.slot_size > MAX_SLOT
            || !self.slot_size.is_power_of_two()
        {
            return Err(format!(
                "slot size {} is not a power of two between {MIN_SLOT} and {MAX_SLOT}",
                self.slot_size
            ));
        }
        if self.lanes == 0 || !self.lanes.is_power_of_two() || self.lanes > MAX_LANES {
            return Err(format!(
                "lane count {} is not a power of two between 1 and {MAX_LANES}",
                self.lanes
            ));
        }
        if self.slots_per_lane < 16
            || !self.slots_per_lane.is_power_of_two()
            || self.slots_per_lane > 1 << 24
        {
            return Err(format!(
                "{} slots per lane is not a power of two between 16 and 2^24",
                self.slots_per_lane
            ));
        }
        if self.lane_bytes() < 4096 {
            return Err(format!(
                "a lane of {} bytes is too small (at least 4096)",
                self.lane_bytes()
            ));
        }
        Ok(())
    }
}

/// Rounds `len` bytes up to whole slots (`slot_size` is a power of two, so
/// this is a shift: a division here was the costliest instruction of an emit).
#[inline]
pub(crate) fn slots_for(len: usize, slot_size: usize) -> u64 {
    debug_assert!(slot_size.is_power_of_two());
    ((len + slot_size - 1) >> slot_size.trailing_zeros()) as u64
}
