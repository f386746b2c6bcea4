//! The C ABI's record struct: `logbus_emit` with a `logbus_record_t` built
//! from arbitrary bytes (any severity, strings of any bytes including invalid
//! UTF-8 and NULs, NULL pointers with and without lengths, any field kind,
//! any number of fields, ids present or not). Pointers are the one thing a C
//! caller promises and the library cannot check, so they are always valid
//! here (or NULL). The result must be the documented code, never
//! `LOGBUS_EPANIC`, and a record written must be read back from the ring as
//! it was given (invalid UTF-8 replaced, cut only where flagged truncated).
#![no_main]

use std::borrow::Cow;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use logbus_c::*;
use logbus_ring::{Batch, Consumer, Ring, RingOptions, Value};

/// Takes pieces off the front of the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn u64(&mut self) -> u64 {
        let mut w = [0u8; 8];
        w[..].copy_from_slice(&{
            let b = self.bytes(8);
            let mut x = [0u8; 8];
            x[..b.len()].copy_from_slice(b);
            x
        });
        u64::from_le_bytes(w)
    }
    /// A string piece: a length byte (scaled, so long strings occur), then bytes.
    fn piece(&mut self) -> &'a [u8] {
        let n = self.byte() as usize;
        let n = if n >= 0xf0 { (n - 0xef) * 4096 } else { n };
        self.bytes(n)
    }
}

struct Setup {
    lb: *mut Logbus,
    consumer: Consumer,
}

// SAFETY: a `logbus_t` handle may be used from any thread (documented).
unsafe impl Send for Setup {}

fn setup() -> &'static Mutex<Setup> {
    static SETUP: OnceLock<Mutex<Setup>> = OnceLock::new();
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    SETUP.get_or_init(|| {
        extern "C" fn remove() {
            if let Some(p) = PATH.get() {
                let _ = std::fs::remove_file(p);
            }
        }
        let path = PATH
            .get_or_init(|| {
                std::env::temp_dir().join(format!("logbus-fuzz-ffi-{}", std::process::id()))
            })
            .clone();
        let _ = std::fs::remove_file(&path);
        // The default block size (the largest record a user gets), few blocks.
        let options = RingOptions {
            size: 8 * RingOptions::default().block_size as u64,
            ..RingOptions::default()
        };
        let ring = Ring::create(&path, &options).expect("create the scratch ring");
        let consumer = Consumer::acquire(&ring).expect("consumer role");
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        let lb = unsafe { logbus_open(c_path.as_ptr()) };
        assert!(!lb.is_null());
        // SAFETY: `remove` only unlinks the file.
        unsafe { libc::atexit(remove) };
        Mutex::new(Setup { lb, consumer })
    })
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn str_of(b: &[u8], null: bool) -> LogbusStr {
    LogbusStr {
        ptr: if null { std::ptr::null() } else { b.as_ptr().cast() },
        len: b.len(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let severity = input.byte() as i8 as i32;
    let shape = input.byte();
    let n_fields = (input.byte() % 20) as usize;
    let time_ns = input.u64();
    let trace = *b"0123456789abcdef";
    let span = [input.byte(); 8];
    let target = input.piece();
    let message = input.piece();
    let null_target = shape & 1 != 0;
    let null_message = shape & 2 != 0;
    let mut fields = Vec::new();
    let mut pieces = Vec::new();
    for _ in 0..n_fields {
        let kind = (input.byte() % 7) as u32;
        let key = input.piece();
        let (value, piece) = if kind == LOGBUS_FIELD_STR {
            let s = input.piece();
            (LogbusValue { str: str_of(s, false) }, s)
        } else {
            (LogbusValue { u64: input.u64() }, &[][..])
        };
        pieces.push(piece);
        fields.push(LogbusField { key: str_of(key, false), kind, value });
    }
    let record = LogbusRecord {
        severity,
        time_ns,
        target: str_of(target, null_target),
        message: str_of(message, null_message),
        fields: if shape & 4 != 0 && n_fields == 0 { std::ptr::null() } else { fields.as_ptr() },
        n_fields,
        trace_id: if shape & 8 != 0 { trace.as_ptr() } else { std::ptr::null() },
        span_id: if shape & 16 != 0 { span.as_ptr() } else { std::ptr::null() },
        trace_flags: shape >> 5,
    };
    let mut s = setup().lock().unwrap();
    // SAFETY: a live handle; every pointer in `record` is valid for its length
    // or NULL.
    let rc = unsafe { logbus_emit(s.lb, &record) };
    let used = &fields[..n_fields.min(LOGBUS_MAX_FIELDS)];
    let expected = if (null_target && !target.is_empty()) || (null_message && !message.is_empty()) {
        LOGBUS_ENULL
    } else if !(1..=24).contains(&severity) || used.iter().any(|f| f.kind > LOGBUS_FIELD_BOOL) {
        LOGBUS_EINVAL
    } else {
        LOGBUS_OK
    };
    // Argument checks come in a fixed order; when several are wrong, any of
    // their codes will do, but never a panic or a success.
    assert_ne!(rc, LOGBUS_EPANIC);
    if expected == LOGBUS_OK {
        assert_eq!(rc, LOGBUS_OK);
    } else {
        assert!(rc == LOGBUS_ENULL || rc == LOGBUS_EINVAL, "{rc} for {expected}");
    }
    let mut batch = Batch::new();
    s.consumer.poll(&mut batch, 16);
    if rc != LOGBUS_OK {
        assert_eq!(batch.len(), 0);
        return;
    }
    assert_eq!(batch.len(), 1);
    let r = batch.get(0).unwrap();
    assert_eq!(r.severity() as i32, severity);
    if time_ns != 0 {
        assert_eq!(r.time_ns(), time_ns);
    }
    let (want_target, want_message) = (lossy(target), lossy(message));
    let cut = |got: &str, want: &str| {
        assert!(want.starts_with(got), "{got:?} is not a prefix of {want:?}");
        assert!(got.len() == want.len() || r.truncated(), "{got:?} cut, not flagged");
    };
    cut(r.target(), &want_target);
    cut(r.message(), &want_message);
    assert_eq!(r.trace_id().is_some(), shape & 8 != 0);
    assert_eq!(r.span_id().is_some(), shape & 16 != 0 && span != [0; 8]);
    assert!(r.field_count() <= used.len());
    assert!(r.field_count() == used.len() || r.truncated());
    for ((key, value), (f, piece)) in r.fields().zip(used.iter().zip(&pieces)) {
        // SAFETY: the fuzz target built `key` from a slice of `data`.
        let want_key = lossy(unsafe { std::slice::from_raw_parts(f.key.ptr.cast::<u8>(), f.key.len) });
        cut(key, &want_key);
        // SAFETY (each arm): `kind` names the member this target set, and
        // every member was written in full (as a u64 or a str).
        match (f.kind, value) {
            (LOGBUS_FIELD_STR, Value::Str(v)) => cut(v, &lossy(piece)),
            (LOGBUS_FIELD_I64, Value::I64(v)) => assert_eq!(v, unsafe { f.value.i64 }),
            (LOGBUS_FIELD_U64, Value::U64(v)) => assert_eq!(v, unsafe { f.value.u64 }),
            (LOGBUS_FIELD_F64, Value::F64(v)) => {
                assert_eq!(v.to_bits(), unsafe { f.value.f64 }.to_bits())
            }
            (LOGBUS_FIELD_BOOL, Value::Bool(v)) => {
                assert_eq!(v, unsafe { f.value.u64 } as u8 != 0)
            }
            (k, v) => panic!("kind {k} read back as {v:?}"),
        }
    }
    s.consumer.commit_all();
});
