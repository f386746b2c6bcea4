//! The panic hook both programs (`logbus` and `logbus-collector`) install:
//! one definition, so that their promise of "one human line, no backtrace"
//! cannot be kept by one and broken by the other.
//!
//! Nothing in either program is meant to panic. If something does, the hook
//! prints `<program>: internal error: <message> (<file>:<line>)` on standard
//! error, with the message on one line, and ends the process with the code
//! the program chose: a half-dead program (a collector whose sink thread is
//! gone) would stall, while a restarted one resumes without loss.
//!
//! It lives here because both binaries already depend on this crate for the
//! status file's path and schema ([`crate::status`]).

use std::any::Any;

/// Replace the default panic hook (for the whole process) by one that prints
/// one line, `<program>: internal error: ...`, and exits with `exit_code`.
pub fn install(program: &'static str, exit_code: i32) {
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| (l.file(), l.line()));
        eprintln!("{}", line(program, info.payload(), at));
        std::process::exit(exit_code);
    }));
}

/// The line the hook prints, for a panic payload (`&str` or `String` from
/// `panic!`, anything else unnamed) raised at `at` (file, line).
fn line(program: &str, payload: &(dyn Any + Send), at: Option<(&str, u32)>) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    let msg = msg.replace(['\n', '\r'], " ");
    match at {
        Some((file, line)) => format!("{program}: internal error: {msg} ({file}:{line})"),
        None => format!("{program}: internal error: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn a_str_payload_becomes_one_line_with_its_location() {
        let payload: &(dyn std::any::Any + Send) = &"index out of\nbounds";
        assert_eq!(
            line("logbus", payload, Some(("src/x.rs", 7))),
            "logbus: internal error: index out of bounds (src/x.rs:7)"
        );
    }

    #[test]
    fn a_string_payload_is_named_and_an_unknown_one_is_said_so() {
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("boom"));
        assert_eq!(
            line("logbus-collector", owned.as_ref(), None),
            "logbus-collector: internal error: boom"
        );
        let other: &(dyn std::any::Any + Send) = &42u8;
        assert_eq!(
            line("logbus", other, None),
            "logbus: internal error: unknown panic"
        );
    }
}
