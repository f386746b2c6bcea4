//! Producers' resources, as the reader resolves them for each chunk's
//! records: looked up in the ring's resource table by (tag, pid) and cached
//! per entry generation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use logbus_ring::{Resource, Ring};

use crate::chunk::Origin;

/// A resolved entry and the generation it was read at.
type Cached = (u64, Option<Arc<Origin>>);

/// Looks up producers' resources, caching them per (tag, pid) and entry
/// generation: a rewritten entry (another process, maybe with the same pid in
/// another pid namespace) is read again, never answered from the cache.
pub(crate) struct Resolver {
    ring: Ring,
    /// The ring's key ([`Chunk::source`](crate::chunk::Chunk::source)).
    source: u32,
    /// (tag, pid) -> (entry generation when read, what it resolved to).
    cache: HashMap<(u8, u32), Cached>,
}

/// The next [`Origin::id`]: unique across every ring's resolver.
static NEXT_ORIGIN: AtomicU64 = AtomicU64::new(1);

impl Resolver {
    pub(crate) fn new(ring: &Ring, source: u32) -> Resolver {
        Resolver {
            ring: ring.clone(),
            source,
            cache: HashMap::new(),
        }
    }

    /// The ring's key ([`Chunk::source`](crate::chunk::Chunk::source)).
    pub(crate) fn source(&self) -> u32 {
        self.source
    }

    /// The ring's owner.
    pub(crate) fn owner(&self) -> u32 {
        self.ring.owner()
    }

    /// The producer's resource of a record's (tag, pid), if it has one.
    pub(crate) fn lookup(&mut self, tag: u8, pid: u32) -> Option<Arc<Origin>> {
        if tag == 0 {
            return None;
        }
        let generation = self.ring.resource_generation(tag);
        if let Some((g, o)) = self.cache.get(&(tag, pid)) {
            if *g == generation {
                return o.clone();
            }
        }
        let found = self
            .ring
            .resource(tag, pid)
            .map(|resource| self.origin(resource));
        self.cache.insert((tag, pid), (generation, found.clone()));
        found
    }

    fn origin(&mut self, resource: Resource) -> Arc<Origin> {
        Arc::new(Origin {
            // Relaxed: a unique number, nothing published with it.
            id: NEXT_ORIGIN.fetch_add(1, Ordering::Relaxed),
            uid: self.ring.owner(),
            resource,
        })
    }

    /// Called about once a second and when idle: learns every entry of the
    /// ring's resource table, so that a process's resource is known before its
    /// entry can be reused by another (its records may still be unread), and
    /// forgets misses (a miss may have been a half-written entry). Entries of
    /// processes long gone stay, up to a bound.
    pub(crate) fn refresh(&mut self) {
        self.cache.retain(|_, (_, o)| o.is_some());
        if self.cache.len() > MAX_CACHED {
            self.cache.clear();
        }
        for (tag, resource) in self.ring.resources() {
            let key = (tag, resource.pid);
            // Read before the entry's contents were (by `resources`): a
            // rewrite in between makes the next lookup read it again.
            let generation = self.ring.resource_generation(tag);
            let known = self.cache.get(&key).and_then(|(_, o)| o.as_ref());
            if known.is_none_or(|o| o.resource != resource) {
                let origin = self.origin(resource);
                self.cache.insert(key, (generation, Some(origin)));
            }
        }
    }
}

/// Resources remembered at most (each a few hundred bytes).
const MAX_CACHED: usize = 4096;
