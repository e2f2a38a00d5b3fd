//! `zoo-bench chart`: a comparison table as a PNG of grouped bars.
//!
//! The input is the TSV the comparison scripts write: a header line
//! `label<TAB>NAME_A<TAB>NAME_B<TAB>unit` naming the two systems, then one
//! row per workload with its two figures (empty or `-` when a run failed)
//! and its unit. Rows differ in unit and scale, so each gets a panel of its
//! own: two bars, their values, and the ratio A / B, green when A is the
//! better (higher for a rate, a unit ending in `/s`; lower for anything
//! else: latency, memory, time), red when it is worse.
//!
//! Text is drawn with a TrueType font read at run time; without it the
//! bars are drawn alone (and a warning printed).

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Where Debian's fonts-dejavu-core puts its sans font.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Panels per row of the picture.
const COLUMNS: usize = 4;
/// One panel's size in pixels.
const PANEL: (u32, u32) = (330, 270);
/// Height of the title above the panels.
const TITLE_HEIGHT: u32 = 50;
/// Space on either side of a bar, in pixels.
const BAR_MARGIN: u32 = 18;
/// Rows read at most: a table for people, not a data set.
const MAX_ROWS: usize = 64;

const COLOR_A: RGBColor = RGBColor(31, 119, 180);
const COLOR_B: RGBColor = RGBColor(255, 127, 14);
const BETTER: RGBColor = RGBColor(30, 140, 60);
const WORSE: RGBColor = RGBColor(200, 40, 40);

#[derive(Debug, clap::Args)]
pub struct ChartArgs {
    /// The table: a header `label, A, B, unit`, then rows, tab-separated.
    #[arg(long)]
    input: PathBuf,
    /// The PNG to write.
    #[arg(long)]
    output: PathBuf,
    /// The picture's title.
    #[arg(long, default_value = "Zoo vs Apache ZooKeeper")]
    title: String,
}

/// The table read from the TSV.
#[derive(Debug)]
struct Table {
    /// The two systems' names, from the header.
    names: [String; 2],
    rows: Vec<Row>,
}

#[derive(Debug)]
struct Row {
    label: String,
    values: [Option<f64>; 2],
    unit: String,
}

impl Row {
    /// A / B, when both ran.
    fn ratio(&self) -> Option<f64> {
        match self.values {
            [Some(a), Some(b)] if b > 0.0 => Some(a / b),
            _ => None,
        }
    }

    fn higher_is_better(&self) -> bool {
        self.unit.ends_with("/s")
    }
}

fn parse(text: &str) -> Result<Table, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().ok_or("empty table")?.split('\t').collect();
    let [_, a, b, _] = header[..] else {
        return Err(format!(
            "header {header:?}: expected label, A, B, unit (tab-separated)"
        ));
    };
    let names = [a.to_string(), b.to_string()];
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [label, a, b, unit] = fields[..] else {
            return Err(format!("row {}: {line:?}: expected 4 fields", n + 1));
        };
        let value = |v: &str| -> Result<Option<f64>, String> {
            match v.trim() {
                "" | "-" => Ok(None),
                v => v
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|e| format!("row {}: {v:?}: {e}", n + 1)),
            }
        };
        rows.push(Row {
            label: label.to_string(),
            values: [value(a)?, value(b)?],
            unit: unit.to_string(),
        });
    }
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(format!("{} rows: expected 1 to {MAX_ROWS}", rows.len()));
    }
    Ok(Table { names, rows })
}

/// Reads the table and writes the PNG.
pub fn draw(args: &ChartArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.input)
        .map_err(|e| format!("{}: {e}", args.input.display()))?;
    let table = parse(&text).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let fonts = register_font();
    if !fonts {
        eprintln!("zoo-bench chart: no font at {FONT} (Debian: fonts-dejavu-core); drawing bars without text");
    }
    plot(&args.output, &args.title, &table, fonts)
        .map_err(|e| format!("{}: {e}", args.output.display()))
}

/// Registers the sans font with plotters; whether text can be drawn.
fn register_font() -> bool {
    let Ok(bytes) = std::fs::read(FONT) else {
        return false;
    };
    // plotters keeps the font for the rest of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
}

/// 1234 → "1.23k"; 0.5 → "0.5".
fn human(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = if scaled.abs() >= 100.0 || scaled.fract() == 0.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{scaled:.digits$}{suffix}")
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

fn plot(path: &Path, title: &str, table: &Table, fonts: bool) -> PlotResult {
    let columns = table.rows.len().min(COLUMNS);
    let rows = table.rows.len().div_ceil(columns);
    let size = (
        PANEL.0 * columns as u32,
        PANEL.1 * rows as u32 + TITLE_HEIGHT,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    if fonts {
        legend(&top, title, &table.names)?;
    }
    for (row, area) in table.rows.iter().zip(body.split_evenly((rows, columns))) {
        panel(&area, row, &table.names, fonts)?;
    }
    root.present()?;
    Ok(())
}

/// The title, then a colour key: a square and the name of each system.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    names: &[String; 2],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let style = ("sans-serif", 20).into_font().color(&BLACK);
    let mut x = 12;
    let text = |t: &str, x: &mut i32| -> PlotResult {
        area.draw(&Text::new(t.to_string(), (*x, 15), style.clone()))?;
        *x += area.estimate_text_size(t, &style)?.0 as i32;
        Ok(())
    };
    text(title, &mut x)?;
    x += 30;
    for (name, color) in names.iter().zip([COLOR_A, COLOR_B]) {
        area.draw(&Rectangle::new([(x, 16), (x + 16, 32)], color.filled()))?;
        x += 22;
        text(name, &mut x)?;
        x += 24;
    }
    text(
        &format!(
            "  ratio = {} / {}: green where {} does better",
            names[0], names[1], names[0]
        ),
        &mut x,
    )?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    row: &Row,
    names: &[String; 2],
    fonts: bool,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let max = row.values.iter().flatten().fold(0.0f64, |m, &v| m.max(v));
    // Room above the bars for their values and the ratio.
    let top = if max > 0.0 { max * 1.35 } else { 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder.margin(8);
    if fonts {
        builder
            .caption(format!("{} ({})", row.label, row.unit), ("sans-serif", 15))
            .x_label_area_size(22)
            .y_label_area_size(48);
    }
    let mut chart = builder.build_cartesian_2d((0u32..1u32).into_segmented(), 0.0..top)?;
    if fonts {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .y_labels(5)
            .y_label_formatter(&|v| human(*v))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => names[*i as usize].clone(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 13))
            .draw()?;
    }
    // One segment per system: bar i spans segment i, less a margin.
    chart.draw_series(row.values.iter().enumerate().filter_map(|(i, v)| {
        let v = (*v)?;
        let right = if i == 0 {
            SegmentValue::Exact(1)
        } else {
            SegmentValue::Last
        };
        let mut bar = Rectangle::new(
            [(SegmentValue::Exact(i as u32), 0.0), (right, v)],
            [COLOR_A, COLOR_B][i].filled(),
        );
        bar.set_margin(0, 0, BAR_MARGIN, BAR_MARGIN);
        Some(bar)
    }))?;
    if !fonts {
        return Ok(());
    }
    let value_style = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(row.values.iter().enumerate().map(|(i, v)| {
        let (text, y) = match v {
            Some(v) => (human(*v), *v),
            None => ("failed".to_string(), 0.0),
        };
        Text::new(
            text,
            (SegmentValue::CenterOf(i as u32), y + top * 0.01),
            value_style.clone(),
        )
    }))?;
    let (text, color) = match row.ratio() {
        Some(r) => {
            let better = if row.higher_is_better() {
                r > 1.0
            } else {
                r < 1.0
            };
            let color = if (r - 1.0).abs() < 0.005 {
                BLACK
            } else if better {
                BETTER
            } else {
                WORSE
            };
            (format!("ratio {r:.2}"), color)
        }
        None => ("ratio -".to_string(), BLACK),
    };
    chart.draw_series(std::iter::once(Text::new(
        text,
        (SegmentValue::Exact(1), top * 0.98),
        ("sans-serif", 16)
            .into_font()
            .color(&color)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scripts_table() {
        let table = parse(
            "workload\tZoo\tZooKeeper\tunit\nwrite 16x8\t11519\t3641\tops/s\nread p50\t-\t80\tus\n",
        )
        .unwrap();
        assert_eq!(table.names, ["Zoo".to_string(), "ZooKeeper".to_string()]);
        assert_eq!(table.rows.len(), 2);
        assert!((table.rows[0].ratio().unwrap() - 11519.0 / 3641.0).abs() < 1e-9);
        assert!(table.rows[0].higher_is_better());
        assert_eq!(table.rows[1].values, [None, Some(80.0)]);
        assert!(!table.rows[1].higher_is_better());
        assert!(parse("a\tb\n").is_err());
        assert!(parse("l\tA\tB\tu\nrow\t1\tx\tus\n").is_err());
    }

    #[test]
    fn numbers_read_short() {
        assert_eq!(human(777.0), "777");
        assert_eq!(human(11519.0), "11.5k");
        assert_eq!(human(1_234_567.0), "1.23M");
        assert_eq!(human(0.5), "0.50");
    }
}
