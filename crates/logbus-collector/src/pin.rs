//! Keeping a ring reachable while it may still hold unread records: the
//! *pin*, a hard link to the ring file under a reserved name beside it,
//! `.NAME.held-DEV-INO` (`NAME` the ring's file name, `DEV`/`INO` the file's
//! identity).
//!
//! A ring deleted or renamed over while producers still write it lives on in
//! their open descriptors only; a collector reads it until no process writes
//! it any more (`collector.rs`, "Rings"). A collector killed meanwhile used to
//! leave those records where no later collector could find them. So a
//! collector of one ring pins every ring it reads while the ring is still
//! linked (when it starts, and when it follows the path to a new ring), and
//! removes the pin once it lets the ring go; a starting collector reads every
//! pinned ring of its path that is no longer the current one as a ring being
//! left (drained until no process writes it), then removes its pin. On a
//! clean exit the current ring's pin is removed (the path reaches it).
//!
//! A link can be made only while the file has a name: a ring replaced before
//! any collector pinned it (none running) is not reachable, as before.
//!
//! Trust: the ring's directory may be shared (`/dev/shm`). A pin is opened as
//! the ring is ([`Ring::open_existing`]: never through a symlink, a regular
//! file owned by this user or its trusted group, not writable by others, a
//! valid ring), so a planted file is refused with one line and left alone.
//! The collector removes only pins whose name and identity it checked just
//! before: a name made for (DEV, INO) that names that file.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use logbus_ring::Ring;

/// The prefix of the pins of the ring at `ring_path`: `.NAME.held-`.
fn prefix(ring_path: &Path) -> Option<String> {
    let name = ring_path.file_name()?.to_str()?;
    Some(format!(".{name}.held-"))
}

/// The pin of `ring` (found at `ring_path`): `.NAME.held-DEV-INO` beside it.
pub(crate) fn pin_path(ring_path: &Path, ring: &Ring) -> Option<PathBuf> {
    let (dev, ino) = ring.file_id();
    let name = format!("{}{dev}-{ino}", prefix(ring_path)?);
    Some(ring_path.with_file_name(name))
}

/// Whether `path` names the file of identity `id` (not following a link).
fn names(path: &Path, id: (u64, u64)) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && (m.dev(), m.ino()) == id)
}

/// Pins `ring`, found at `ring_path`: links its file under its pin name,
/// unless that name already names it (a killed collector's pin). Returns the
/// pin.
///
/// # Errors
/// Why the link could not be made (the directory is not writable, the path no
/// longer names the ring, the file system has no hard links); the ring is
/// read all the same, only not kept reachable.
pub(crate) fn pin(ring_path: &Path, ring: &Ring) -> io::Result<PathBuf> {
    let pin = pin_path(ring_path, ring)
        .ok_or_else(|| io::Error::other("the ring's file name is not UTF-8"))?;
    let id = ring.file_id();
    if names(&pin, id) {
        return Ok(pin);
    }
    // link(2) does not follow a symlink at the ring path; what it linked is
    // checked below, as the path may name another file by now.
    match std::fs::hard_link(ring_path, &pin) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(io::Error::other(format!(
                "{} exists and is not a link to the ring",
                pin.display()
            )))
        }
        Err(e) => return Err(e),
    }
    if names(&pin, id) {
        return Ok(pin);
    }
    // The path named another file when linked: that link is ours (made just
    // now under a name only the ring's identity gives), so remove it.
    let _ = std::fs::remove_file(&pin);
    Err(io::Error::other("the ring path names another file by now"))
}

/// Removes the pin `pin` of the file of identity `id`, if it still names it.
pub(crate) fn unpin(pin: &Path, id: (u64, u64)) {
    if names(pin, id) {
        let _ = std::fs::remove_file(pin);
    }
}

/// The pins beside `ring_path`: names of the pin form, of regular files (a
/// symlink or anything else under such a name is not a pin and is left alone).
pub(crate) fn pins(ring_path: &Path) -> Vec<PathBuf> {
    let (Some(prefix), Some(dir)) = (prefix(ring_path), ring_path.parent()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|id| {
                    id.split_once('-')
                        .is_some_and(|(d, i)| d.parse::<u64>().is_ok() && i.parse::<u64>().is_ok())
                })
        })
        .map(|e| ring_path.with_file_name(e.file_name()))
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbus_ring::RingOptions;
    use logbus_testkit::TempDir;

    fn small() -> RingOptions {
        RingOptions {
            size: 16 * 4096,
            block_size: 4096,
            ..RingOptions::default()
        }
    }

    #[test]
    fn a_pin_keeps_a_replaced_ring_reachable_and_is_found_beside_its_path() {
        let dir = TempDir::new("pin-found");
        let path = dir.path("ring");
        let ring = Ring::create(&path, &small()).unwrap();
        let held = pin(&path, &ring).unwrap();
        assert_eq!(
            pin(&path, &ring).unwrap(),
            held,
            "pinning twice keeps one pin"
        );
        std::fs::remove_file(&path).unwrap();
        let next = Ring::create(&path, &small()).unwrap();
        assert_eq!(pins(&path), vec![held.clone()]);
        let old = Ring::open_existing(&held).unwrap();
        assert_eq!(old.file_id(), ring.file_id());
        // Only the pin of the file it was made for is removed.
        unpin(&held, next.file_id());
        assert!(held.exists());
        unpin(&held, ring.file_id());
        assert!(pins(&path).is_empty());
    }

    #[test]
    fn a_symlink_under_a_pin_name_is_not_a_pin() {
        let dir = TempDir::new("pin-link");
        let path = dir.path("ring");
        let ring = Ring::create(&path, &small()).unwrap();
        let name = pin_path(&path, &ring).unwrap();
        std::os::unix::fs::symlink(&path, &name).unwrap();
        assert!(pins(&path).is_empty());
        assert!(pin(&path, &ring).is_err(), "a planted symlink is not taken");
        assert!(std::fs::symlink_metadata(&name).unwrap().is_symlink());
    }
}
