//! A run's report directory, beside `history.jsonl` and `results.json`:
//! `timeline.html` (each process's operations on a time axis, the fault
//! windows shaded, details on hover) and `latency.png` and
//! `throughput.png` (latency of every operation and completed operations
//! per second, by outcome, the fault windows shaded).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::history::{Op, Outcome};
use crate::runner::RunResult;

/// Operations drawn in the timeline at most; the rest are counted.
const TIMELINE_MAX_OPS: usize = 20_000;
/// Rows (processes) drawn in the timeline at most.
const TIMELINE_MAX_ROWS: usize = 400;
/// Points drawn in the latency plot at most (evenly thinned beyond).
const LATENCY_MAX_POINTS: usize = 50_000;
/// Where Debian's fonts-dejavu-core puts its sans font; without it the
/// plots have no text.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub fn write(dir: &Path, result: &RunResult, ops: &[Op]) -> Result<(), String> {
    std::fs::write(dir.join("timeline.html"), timeline(result, ops))
        .map_err(|e| format!("writing the timeline: {e}"))?;
    let fonts = register_font();
    latency_plot(&dir.join("latency.png"), result, ops, fonts)
        .map_err(|e| format!("drawing latency.png: {e}"))?;
    throughput_plot(&dir.join("throughput.png"), result, ops, fonts)
        .map_err(|e| format!("drawing throughput.png: {e}"))?;
    Ok(())
}

/// The outcome's colour in HTML, the same as in the plots.
fn color(outcome: Outcome) -> String {
    let RGBColor(r, g, b) = rgb(outcome);
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML timeline: one row per process, time left to right.
pub fn timeline(result: &RunResult, ops: &[Op]) -> String {
    let mut rows: Vec<u64> = ops.iter().map(|o| o.process).collect();
    rows.sort_unstable();
    rows.dedup();
    rows.truncate(TIMELINE_MAX_ROWS);
    let row_of = |p: u64| rows.binary_search(&p).ok();
    let end_ns = ops
        .iter()
        .map(|o| o.complete_ns)
        .chain(result.faults.iter().map(|f| f.end_ns))
        .max()
        .unwrap_or(1)
        .max(1);
    let (width, row_h, left) = (1600.0, 14.0, 60.0);
    let height = rows.len() as f64 * row_h + 40.0;
    let x = |ns: u64| left + (ns as f64 / end_ns as f64) * (width - left - 10.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="10">"#
    );
    for f in &result.faults {
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="0" width="{:.1}" height="{height}" fill="#999" opacity="0.25"><title>{}: {}</title></rect>"##,
            x(f.start_ns),
            (x(f.end_ns) - x(f.start_ns)).max(1.0),
            escape(&f.kind),
            escape(&f.detail)
        );
    }
    for (i, p) in rows.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text x="2" y="{:.1}">p{p}</text>"#,
            i as f64 * row_h + 11.0
        );
    }
    let mut drawn = 0;
    for op in ops {
        let Some(row) = row_of(op.process) else {
            continue;
        };
        if drawn == TIMELINE_MAX_OPS {
            break;
        }
        drawn += 1;
        let detail = format!(
            "#{} {} {:?} on server {}: {}{}{}",
            op.id,
            op.call.name(),
            op.outcome,
            op.node + 1,
            serde_json::to_string(&op.call).unwrap_or_default(),
            op.ret
                .as_ref()
                .map(|r| format!(" → {}", serde_json::to_string(r).unwrap_or_default()))
                .unwrap_or_default(),
            op.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
            x(op.invoke_ns),
            row as f64 * row_h + 2.0,
            (x(op.complete_ns) - x(op.invoke_ns)).max(1.0),
            row_h - 4.0,
            color(op.outcome),
            escape(&detail)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{left}" y="{:.1}">0 s</text><text x="{:.1}" y="{:.1}" text-anchor="end">{:.1} s</text></svg>"#,
        height - 6.0,
        width - 10.0,
        height - 6.0,
        end_ns as f64 / 1e9
    );
    let mut faults = String::new();
    for f in &result.faults {
        let _ = write!(
            faults,
            "<li>{:.1}–{:.1} s: <b>{}</b> {}</li>",
            f.start_ns as f64 / 1e9,
            f.end_ns as f64 / 1e9,
            escape(&f.kind),
            escape(&f.detail)
        );
    }
    let mut checkers = String::new();
    for c in &result.checkers {
        let _ = write!(
            checkers,
            "<li><b>{}</b>: {:?}</li>",
            escape(&c.checker),
            c.verdict
        );
        let _ = write!(checkers, "<ul><li>{}</li>", escape(&c.summary));
        for a in &c.anomalies {
            let _ = write!(
                checkers,
                "<li>{}: {} (ops {:?})</li>",
                escape(&a.kind),
                escape(&a.detail),
                a.ops
            );
        }
        checkers.push_str("</ul>");
    }
    let harness: String = result
        .harness_errors
        .iter()
        .map(|e| format!("<li><pre>{}</pre></li>", escape(e)))
        .collect();
    let omitted = ops.len().saturating_sub(drawn);
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>zoo-jepsen {w} {n} seed {s}</title></head>\
         <body style=\"font-family:sans-serif\"><h1>{w} under {n}, {nodes} servers, seed {s}: {v:?}</h1>\
         <p>{ops} operations ({ok} ok, {fail} fail, {info} info){omitted_note}. \
         Green ok, red fail, orange info (indeterminate); grey bands are faults. Hover for details.</p>\
         <h2>Checkers</h2><ul>{checkers}</ul>\
         {harness_block}\
         <h2>Faults</h2><ol>{faults}</ol>\
         <h2>Timeline</h2><div style=\"overflow-x:auto\">{svg}</div>\
         <p><img src=\"latency.png\"> <img src=\"throughput.png\"></p></body></html>\n",
        w = escape(&result.workload),
        n = escape(&result.nemesis),
        s = result.seed,
        nodes = result.nodes,
        v = result.verdict,
        ops = result.ops,
        ok = result.ok,
        fail = result.fail,
        info = result.info,
        omitted_note = if omitted > 0 {
            format!("; the timeline shows the first {drawn}")
        } else {
            String::new()
        },
        harness_block = if harness.is_empty() {
            String::new()
        } else {
            format!("<h2>Harness errors</h2><ul>{harness}</ul>")
        },
    )
}

/// Registers the sans font with plotters; whether text can be drawn.
fn register_font() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let Ok(bytes) = std::fs::read(FONT) else {
            return false;
        };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

fn shade_faults<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    result: &RunResult,
    y: (f64, f64),
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    chart.draw_series(result.faults.iter().map(|f| {
        Rectangle::new(
            [(f.start_ns as f64 / 1e9, y.0), (f.end_ns as f64 / 1e9, y.1)],
            RGBColor(150, 150, 150).mix(0.3).filled(),
        )
    }))?;
    Ok(())
}

fn rgb(outcome: Outcome) -> RGBColor {
    match outcome {
        Outcome::Ok => RGBColor(58, 157, 93),
        Outcome::Fail => RGBColor(217, 83, 79),
        Outcome::Info => RGBColor(240, 173, 78),
    }
}

fn run_seconds(result: &RunResult, ops: &[Op]) -> f64 {
    ops.iter()
        .map(|o| o.complete_ns)
        .chain(result.faults.iter().map(|f| f.end_ns))
        .max()
        .unwrap_or(0) as f64
        / 1e9
        + 0.5
}

fn latency_plot(path: &Path, result: &RunResult, ops: &[Op], fonts: bool) -> PlotResult {
    let root = BitMapBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let seconds = run_seconds(result, ops);
    let latency_ms = |o: &Op| ((o.complete_ns - o.invoke_ns) as f64 / 1e6).max(0.01);
    let max_ms = ops.iter().map(latency_ms).fold(1.0f64, f64::max) * 1.2;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(10);
    if fonts {
        builder
            .caption(
                format!(
                    "{} under {}: latency (ms, log) over time (s); green ok, red fail, orange info; grey = faults",
                    result.workload, result.nemesis
                ),
                ("sans-serif", 18),
            )
            .x_label_area_size(30)
            .y_label_area_size(50);
    }
    let mut chart = builder.build_cartesian_2d(0.0..seconds, (0.01..max_ms).log_scale())?;
    if fonts {
        chart.configure_mesh().disable_mesh().draw()?;
    }
    chart.draw_series(result.faults.iter().map(|f| {
        Rectangle::new(
            [
                (f.start_ns as f64 / 1e9, 0.01),
                (f.end_ns as f64 / 1e9, max_ms),
            ],
            RGBColor(150, 150, 150).mix(0.3).filled(),
        )
    }))?;
    let step = (ops.len() / LATENCY_MAX_POINTS).max(1);
    chart.draw_series(ops.iter().step_by(step).map(|o| {
        Circle::new(
            (o.invoke_ns as f64 / 1e9, latency_ms(o)),
            2,
            rgb(o.outcome).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

fn throughput_plot(path: &Path, result: &RunResult, ops: &[Op], fonts: bool) -> PlotResult {
    let root = BitMapBackend::new(path, (1200, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let seconds = run_seconds(result, ops);
    let bins = seconds.ceil() as usize + 1;
    let mut counts = [vec![0u32; bins], vec![0u32; bins], vec![0u32; bins]];
    for o in ops {
        let bin = ((o.complete_ns / 1_000_000_000) as usize).min(bins - 1);
        let k = match o.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
        };
        counts[k][bin] += 1;
    }
    let max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(10);
    if fonts {
        builder
            .caption(
                format!(
                    "{} under {}: completed operations per second; green ok, red fail, orange info; grey = faults",
                    result.workload, result.nemesis
                ),
                ("sans-serif", 18),
            )
            .x_label_area_size(30)
            .y_label_area_size(50);
    }
    let mut chart = builder.build_cartesian_2d(0.0..seconds, 0.0..max)?;
    if fonts {
        chart.configure_mesh().disable_mesh().draw()?;
    }
    shade_faults(&mut chart, result, (0.0, max))?;
    for (k, outcome) in [Outcome::Ok, Outcome::Fail, Outcome::Info]
        .into_iter()
        .enumerate()
    {
        chart.draw_series(LineSeries::new(
            counts[k]
                .iter()
                .enumerate()
                .map(|(s, &c)| (s as f64 + 0.5, c as f64)),
            rgb(outcome).stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}
