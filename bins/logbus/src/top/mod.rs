//! `logbus top`: the bus, live. Every interval (1 s by default) it reads the
//! watched rings' counters, the collector's status file and each ring's
//! resource table (per-process counters), and shows rates: a full-screen view
//! on a terminal (`q`, Esc or Ctrl-C quits and restores the terminal), or one
//! text screen (`--once`) or JSON (`--json`) for scripts.
//!
//! A ring that vanishes or is not a ring is one line on the screen, never the
//! end of the program (only an unusable terminal is).

mod sample;
mod view;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::cli::TopArgs;
use sample::{Frame, Reading, Target};

/// Columns of the `--once` text screen.
const TEXT_WIDTH: u16 = 160;

pub fn run(args: &TopArgs) -> Result<()> {
    let target = match &args.ring_dir {
        Some(dir) => Target::Dir(dir.clone()),
        None => Target::Ring(logbus_ring::ring_path(args.ring.as_deref())),
    };
    let interval = Duration::from_millis(args.interval_ms);
    if args.once || args.json {
        return print(&target, interval, args.once, args.json);
    }
    let mut terminal = ratatui::try_init().context("cannot take over the terminal")?;
    let result = live(&mut terminal, &target, interval);
    ratatui::restore();
    result
}

/// `--once` / `--json`: one frame after one interval (`--once`), or one per
/// interval until stdout closes.
fn print(target: &Target, interval: Duration, once: bool, json: bool) -> Result<()> {
    let mut before = Reading::take(target);
    let mut out = std::io::stdout().lock();
    loop {
        // The interval the rates are measured over, not a synchronisation.
        std::thread::sleep(interval);
        let now = Reading::take(target);
        let frame = Frame::new(Some(&before), &now);
        if json {
            let mut s = serde_json::to_string(&frame.to_json())?;
            s.push('\n');
            out.write_all(s.as_bytes())?;
        } else {
            out.write_all(view::to_text(&frame, TEXT_WIDTH).as_bytes())?;
        }
        out.flush()?;
        if once {
            return Ok(());
        }
        before = now;
    }
}

/// The full-screen loop: a frame per interval, keys in between.
fn live(
    terminal: &mut ratatui::DefaultTerminal,
    target: &Target,
    interval: Duration,
) -> Result<()> {
    let mut before: Option<Reading> = None;
    let mut frame = Frame::default();
    let mut next = Instant::now();
    loop {
        if Instant::now() >= next {
            let now = Reading::take(target);
            frame = Frame::new(before.as_ref(), &now);
            before = Some(now);
            next += interval;
            if next < Instant::now() {
                next = Instant::now() + interval;
            }
        }
        terminal
            .draw(|f| view::render(&frame, f.area(), f.buffer_mut()))
            .context("cannot draw on the terminal")?;
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait).context("cannot read the terminal")? {
            if let Event::Key(k) = event::read().context("cannot read the terminal")? {
                let ctrl_c =
                    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if k.kind == KeyEventKind::Press
                    && (ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc))
                {
                    return Ok(());
                }
            }
        }
    }
}
