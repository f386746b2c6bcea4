//! How a [`Frame`] looks: three tables (rings, sinks, producers by rate) and
//! one line per ring that could not be read, drawn with ratatui, either on
//! the terminal or into a plain-text buffer (`--once`).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget};

use super::sample::{Frame, Rate};
use logbus_ring::{Level, LEVELS};

/// The rows each part needs (borders and header included).
fn heights(f: &Frame) -> [u16; 5] {
    let n = |k: usize| k.min(200) as u16;
    [
        1,
        n(f.rings.len()) + 3,
        n(f.sinks.len().max(1)) + 3,
        n(f.producers.len().max(1)) + 3,
        n(f.problems.len()),
    ]
}

/// The height a text rendering of `f` needs (`--once`).
pub fn full_height(f: &Frame) -> u16 {
    heights(f).iter().sum()
}

/// Draws `f` into `area` of `buf`.
pub fn render(f: &Frame, area: Rect, buf: &mut Buffer) {
    let [title, rings, sinks, producers, problems] = heights(f);
    let parts = Layout::vertical([
        Constraint::Length(title),
        Constraint::Length(rings),
        Constraint::Length(sinks),
        Constraint::Min(producers.min(4)),
        Constraint::Length(problems),
    ])
    .split(area);
    let interval = match f.interval_ms {
        Some(ms) => format!("rates over the last {:.1} s", ms as f64 / 1000.0),
        None => "rates from the next refresh on".to_string(),
    };
    Paragraph::new(Line::from(format!(
        "logbus top - {} ring(s), {} sink(s), {} producer(s) - {interval} - q quits",
        f.rings.len(),
        f.sinks.len(),
        f.producers.len()
    )))
    .style(Style::new().add_modifier(Modifier::BOLD))
    .render(parts[0], buf);
    rings_table(f).render(parts[1], buf);
    sinks_table(f).render(parts[2], buf);
    producers_table(f).render(parts[3], buf);
    let lines: Vec<Line> = f
        .problems
        .iter()
        .map(|p| Line::styled(p.clone(), Style::new().fg(Color::Red)))
        .collect();
    Paragraph::new(lines).render(parts[4], buf);
}

/// A rate for a cell: `-` before the second reading.
fn rate(r: Rate) -> String {
    match r {
        None => "-".into(),
        Some(v) if v >= 10_000_000.0 => format!("{:.1}M", v / 1e6),
        Some(v) if v >= 100_000.0 => format!("{:.0}k", v / 1e3),
        Some(v) => format!("{v:.0}"),
    }
}

/// Per-level rates, `T/D/I/W/E/F`.
fn levels(r: &[Rate; LEVELS]) -> String {
    Level::ALL
        .iter()
        .map(|l| rate(r[*l as usize]))
        .collect::<Vec<_>>()
        .join("/")
}

fn header(cells: &[&'static str]) -> Row<'static> {
    Row::new(cells.iter().copied())
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED))
}

fn rings_table(f: &Frame) -> Table<'static> {
    let rows = f.rings.iter().map(|r| {
        Row::new(vec![
            Cell::from(r.path.clone()),
            Cell::from(format!("{}/{}", r.blocks_in_use, r.blocks)),
            Cell::from(levels(&r.in_per_s)),
            Cell::from(levels(&r.out_per_s)),
            Cell::from(rate(r.dropped_per_s)),
            Cell::from(rate(r.evicted_per_s)),
            Cell::from(rate(r.torn_per_s)),
            Cell::from(if r.lossless {
                rate(r.waits_per_s)
            } else {
                "lossy".into()
            }),
            Cell::from(
                r.consumer_pid
                    .map_or_else(|| "none".into(), |p| p.to_string()),
            ),
        ])
    });
    Table::new(
        rows,
        [
            Constraint::Fill(2),
            Constraint::Length(9),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(9),
        ],
    )
    .header(header(&[
        "RING",
        "FILL",
        "IN/s T/D/I/W/E/F",
        "OUT/s T/D/I/W/E/F",
        "DROP/s",
        "EVICT/s",
        "TORN/s",
        "WAITS/s",
        "CONSUMER",
    ]))
    .block(Block::bordered().title(" rings "))
}

fn sinks_table(f: &Frame) -> Table<'static> {
    let mut rows: Vec<Row> = f
        .sinks
        .iter()
        .map(|s| {
            let state = match s.up {
                Some(true) => Cell::from("up").style(Style::new().fg(Color::Green)),
                Some(false) => Cell::from("DOWN").style(
                    Style::new()
                        .fg(Color::Red)
                        .add_modifier(Modifier::BOLD | Modifier::REVERSED),
                ),
                None => Cell::from("?"),
            };
            Row::new(vec![
                Cell::from(s.name.clone()),
                Cell::from(s.kind.clone()),
                state,
                Cell::from(s.backlog.to_string()),
                Cell::from(rate(s.written_per_s)),
                Cell::from(s.dropped.to_string()),
                Cell::from(s.lost_in_crash.to_string()),
                Cell::from(s.retries.map_or_else(|| "-".into(), |r| r.to_string())),
                Cell::from(
                    s.writing_for_ms
                        .map_or_else(|| "-".into(), |r| r.to_string()),
                ),
                Cell::from(s.ring.clone()),
            ])
        })
        .collect();
    if rows.is_empty() {
        rows.push(Row::new(vec![Cell::from("(no collector status)")]));
    }
    Table::new(
        rows,
        [
            Constraint::Length(22),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(13),
            Constraint::Length(8),
            Constraint::Length(15),
            Constraint::Fill(1),
        ],
    )
    .header(header(&[
        "SINK",
        "TYPE",
        "STATE",
        "BACKLOG",
        "WRITTEN/s",
        "DROPPED",
        "LOST_IN_CRASH",
        "RETRIES",
        "WRITING_FOR_MS",
        "RING",
    ]))
    .block(Block::bordered().title(" sinks "))
}

fn producers_table(f: &Frame) -> Table<'static> {
    let mut rows: Vec<Row> = f
        .producers
        .iter()
        .map(|p| {
            let style = if p.alive {
                Style::new()
            } else {
                Style::new().add_modifier(Modifier::DIM)
            };
            Row::new(vec![
                Cell::from(p.pid.to_string()),
                Cell::from(p.service.clone()),
                Cell::from(p.uid.to_string()),
                Cell::from(rate(p.records_per_s)),
                Cell::from(p.dropped_last.to_string()),
                Cell::from(p.written.to_string()),
                Cell::from(if p.alive { "running" } else { "exited" }),
                Cell::from(p.ring.clone()),
            ])
            .style(style)
        })
        .collect();
    if rows.is_empty() {
        rows.push(Row::new(vec![Cell::from("(none)")]));
    }
    Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(22),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(header(&[
        "PID",
        "SERVICE",
        "UID",
        "RECORDS/s",
        "DROPPED",
        "WRITTEN",
        "STATE",
        "RING",
    ]))
    .block(Block::bordered().title(" producers, busiest first "))
}

/// `f` as plain text lines of `width` columns (trailing blanks cut).
pub fn to_text(f: &Frame, width: u16) -> String {
    let area = Rect::new(0, 0, width, full_height(f));
    let mut buf = Buffer::empty(area);
    render(f, area, &mut buf);
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
