//! Who may have written a file logbus opens: the checks made after `open`
//! (on the descriptor, so that the path cannot be swapped between the check
//! and the use). See `SECURITY.md` for the threat model.
//!
//! Anything that can write a ring's bytes can crash the processes that map it
//! for writing (a producer touching a page the writer just truncated away dies
//! of SIGBUS), so by default only the same user may write a ring: a file
//! owned by another user, or writable by its group or by everyone, is refused.
//! `$LOGBUS_TRUST_GROUP` (a group name or number) allows one group: a file of
//! that group may be group-writable and owned by any member.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// The environment variable naming the group trusted to share rings and files.
pub const TRUST_GROUP_ENV: &str = "LOGBUS_TRUST_GROUP";

/// The group named by `$LOGBUS_TRUST_GROUP`, if it is set and exists.
pub fn trusted_group() -> Option<u32> {
    let name = std::env::var(TRUST_GROUP_ENV).ok()?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    if let Ok(gid) = name.parse::<u32>() {
        return Some(gid);
    }
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `group` and `result` are valid for writes, `buf` is a writable
    // buffer of the length we pass, and `c` is a NUL-terminated string; the
    // reentrant variant keeps everything it returns inside `buf`.
    unsafe {
        let mut group: libc::group = std::mem::zeroed();
        let mut result: *mut libc::group = std::ptr::null_mut();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let rc = libc::getgrnam_r(
            c.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some(group.gr_gid)
    }
}

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Owner and mode for messages: `owner uid 65534, group 65534, mode 0666`.
pub fn describe(meta: &Metadata) -> String {
    format!(
        "owner uid {}, group {}, mode {:04o}",
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777
    )
}

/// Checks an opened file's metadata: a regular file, not writable by other
/// users (unless by the trusted group), and, when `for_writing`, owned by
/// this user (or of the trusted group). `Err` is the reason, one line.
///
/// # Errors
/// The reason the file is refused, naming its owner and mode.
pub fn check_file(meta: &Metadata, for_writing: bool) -> Result<(), String> {
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_symlink() {
            "a symbolic link"
        } else {
            "a device or socket"
        };
        return Err(format!("it is {what}, not a regular file"));
    }
    check_owner(meta, for_writing)
}

fn check_owner(meta: &Metadata, for_writing: bool) -> Result<(), String> {
    let mode = meta.mode();
    let trusted = trusted_group().is_some_and(|g| g == meta.gid());
    let hint = "set LOGBUS_TRUST_GROUP to share rings with a group";
    if mode & 0o002 != 0 {
        return Err(format!(
            "it is writable by every user ({}); any of them could crash its readers and writers",
            describe(meta)
        ));
    }
    if mode & 0o020 != 0 && !trusted {
        return Err(format!(
            "it is writable by its group ({}); {hint}",
            describe(meta)
        ));
    }
    if for_writing && meta.uid() != euid() && !trusted {
        return Err(format!(
            "it belongs to another user ({}), this process runs as uid {}; {hint}",
            describe(meta),
            euid()
        ));
    }
    Ok(())
}
