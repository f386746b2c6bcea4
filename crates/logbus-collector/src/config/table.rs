//! The shapes of the configuration file's tables as serde reads them, before
//! validation: the values (levels, durations) and [`sink_table!`], which
//! declares a sink type's table with the keys every sink has.

use std::path::PathBuf;
use std::time::Duration;

use logbus_ring::Level;
use serde::Deserialize;

/// Declares the table of one type of sink: `$table`, which serde reads with
/// `deny_unknown_fields` (every key of every sink, then the sink type's own
/// keys), and `$own`, the sink type's own keys as written.
///
/// The keys every sink has are repeated in each table rather than flattened
/// in from one struct, because serde's `deny_unknown_fields` does not work
/// across `#[serde(flatten)]`; [`SharedTable`] holds them once read.
macro_rules! sink_table {
    ($(#[$m:meta])* $table:ident => $own:ident {
        $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default)]
        pub(crate) struct $own {
            $( $(#[$fm])* pub(crate) $field: $ty, )*
        }

        #[doc = concat!("The whole table of a sink whose own keys are [`", stringify!($own), "`].")]
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $table {
            name: Option<String>,
            #[serde(rename = "type")]
            _type: Option<serde::de::IgnoredAny>,
            min_level: Option<$crate::config::table::Lvl>,
            max_level: Option<$crate::config::table::Lvl>,
            queue: Option<usize>,
            max_backlog: Option<u64>,
            stall_timeout: Option<$crate::config::table::Dur>,
            block_timeout: Option<$crate::config::table::Dur>,
            $( $field: $ty, )*
        }

        impl $table {
            /// Every key the table accepts.
            pub(crate) const KEYS: &'static [&'static str] = &[
                "name", "type", "min_level", "max_level", "queue", "max_backlog",
                "stall_timeout", "block_timeout", $( stringify!($field), )*
            ];

            /// The keys every sink has, and the sink type's own.
            pub(crate) fn into_parts(self) -> ($crate::config::table::SharedTable, $own) {
                (
                    $crate::config::table::SharedTable {
                        name: self.name,
                        min_level: self.min_level,
                        max_level: self.max_level,
                        queue: self.queue,
                        max_backlog: self.max_backlog,
                        stall_timeout: self.stall_timeout.is_some(),
                        block_timeout: self.block_timeout.is_some(),
                    },
                    $own { $( $field: self.$field, )* },
                )
            }
        }
    };
}
pub(crate) use sink_table;

/// The keys every sink's table has, as written.
pub(crate) struct SharedTable {
    pub(crate) name: Option<String>,
    pub(crate) min_level: Option<Lvl>,
    pub(crate) max_level: Option<Lvl>,
    pub(crate) queue: Option<usize>,
    pub(crate) max_backlog: Option<u64>,
    /// Set (a key no longer used).
    pub(crate) stall_timeout: bool,
    /// Set (a key no longer used).
    pub(crate) block_timeout: bool,
}

/// The `[ring]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RingTable {
    pub(crate) path: Option<PathBuf>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) shutdown_timeout: Option<Dur>,
}

/// A level as written in the file: a name or a severity number (which
/// selects its band).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lvl(pub(crate) Level);

impl<'de> Deserialize<'de> for Lvl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string(),
            Raw::Text(s) => s,
        };
        super::parse_level(&text)
            .map(Lvl)
            .map_err(serde::de::Error::custom)
    }
}

/// A duration as written in the file (`250ms`, `5s`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dur(pub(crate) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}
