//! Turns the benchmark's CSV files into the SVG plots the measuring and attack chapters show.
//!
//! `cargo run -p lessons-professional --example measuring_plot` reads
//! `book/src/professional/measurements/` (written by `scripts/bench-template.sh`, and the
//! slowhttptest reports copied there from `target/attack/`) and writes three plots next to them:
//! throughput and latency against concurrency, and the attack's open connections over time.
//!
//! plotters draws with explicit colours; the book shows the SVG inline on light and dark themes,
//! so black becomes `currentColor` (the page's text colour) and the first line becomes the one
//! the book's diagrams open with.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Mid-tone colours that read on both the light and the dark theme.
const BLUE: RGBColor = RGBColor(0x4e, 0x79, 0xa7);
const RED: RGBColor = RGBColor(0xe1, 0x57, 0x59);
const GREEN: RGBColor = RGBColor(0x59, 0xa1, 0x4f);
const ORANGE: RGBColor = RGBColor(0xf2, 0x8e, 0x2b);

const SIZE: (u32, u32) = (720, 400);

/// One row of `load.csv`.
struct Point {
    protocol: String,
    route: String,
    concurrency: f64,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book/src/professional/measurements");
    let points = read_load(&dir.join("load.csv"))?;
    tracing::info!(rows = points.len(), "read load.csv");

    let series = |protocol: &str, route: &str| -> Vec<&Point> {
        points
            .iter()
            .filter(|p| p.protocol == protocol && p.route == route)
            .collect()
    };
    let (h1, h2, h1_work) = (
        series("http1", "/"),
        series("http2", "/"),
        series("http1", "/work?ms=10"),
    );

    write(
        &dir.join("measuring-throughput.svg"),
        "Requests per second against concurrency, both axes logarithmic: HTTP/1 and HTTP/2 \
         on GET /, and HTTP/1 on a handler that waits 10 ms.",
        |root| {
            let top = points
                .iter()
                .map(|p| p.requests_per_second)
                .fold(1.0, f64::max)
                * 2.0;
            let mut chart = chart(root, "Throughput", "requests / s", 50.0..top)?;
            line(
                &mut chart,
                &h1,
                |p| p.requests_per_second,
                BLUE,
                "HTTP/1  GET /",
            )?;
            line(
                &mut chart,
                &h2,
                |p| p.requests_per_second,
                RED,
                "HTTP/2  GET /",
            )?;
            line(
                &mut chart,
                &h1_work,
                |p| p.requests_per_second,
                GREEN,
                "HTTP/1  GET /work?ms=10",
            )?;
            legend(&mut chart, SeriesLabelPosition::LowerRight)
        },
    )?;

    write(
        &dir.join("measuring-latency.svg"),
        "Latency percentiles of GET / against concurrency, both axes logarithmic: p50 and p99 \
         for HTTP/1 and for HTTP/2.",
        |root| {
            let all = h1.iter().chain(&h2).flat_map(|p| [p.p50_ms, p.p99_ms]);
            let (low, high) = all.fold((f64::MAX, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
            let mut chart = chart(
                root,
                "Latency of GET /",
                "milliseconds",
                low.max(0.001) / 2.0..high * 2.0,
            )?;
            line(&mut chart, &h1, |p| p.p99_ms, BLUE, "HTTP/1  p99")?;
            line(&mut chart, &h1, |p| p.p50_ms, BLUE.mix(0.5), "HTTP/1  p50")?;
            line(&mut chart, &h2, |p| p.p99_ms, RED, "HTTP/2  p99")?;
            line(&mut chart, &h2, |p| p.p50_ms, RED.mix(0.5), "HTTP/2  p50")?;
            legend(&mut chart, SeriesLabelPosition::LowerRight)
        },
    )?;

    let attacks = [
        ("slowloris-vs-template", BLUE, "slowloris, template"),
        ("slowloris-vs-no-timer", RED, "slowloris, --no-timer"),
        ("slow-body-vs-template", GREEN, "slow body, template"),
    ];
    let mut runs = Vec::new();
    for (name, colour, label) in attacks {
        let rows = read_attack(&dir.join(format!("attack-{name}.csv")))?;
        tracing::info!(
            scenario = name,
            seconds = rows.len(),
            "read the attack report"
        );
        runs.push((rows, colour, label));
    }
    write(
        &dir.join("attack-connections.svg"),
        "Attack connections open over time, by slowhttptest's once-a-second samples, for \
         slowloris against the template, slowloris against the template without a timer, and a \
         slow body against the template; a line marks the 256 connection permits.",
        |root| {
            let seconds = runs.iter().map(|(r, ..)| r.len()).max().unwrap_or(1) as f64;
            let mut chart = ChartBuilder::on(root)
                .caption("Attack connections open", ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..seconds, 0.0..520.0)?;
            chart
                .configure_mesh()
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .x_desc("seconds")
                .y_desc("connections")
                .light_line_style(BLACK.mix(0.08))
                .bold_line_style(BLACK.mix(0.2))
                .draw()?;
            chart
                .draw_series(LineSeries::new(
                    [(0.0, 256.0), (seconds, 256.0)],
                    ORANGE.stroke_width(1),
                ))?
                .label("256 permits")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], ORANGE));
            for (rows, colour, label) in &runs {
                let data = rows.iter().map(|&(s, c)| (s, c));
                chart
                    .draw_series(LineSeries::new(data, colour.stroke_width(2)))?
                    .label(*label)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                    });
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight)
        },
    )?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, LogCoord<f64>>,
>;

/// Concurrency on a log-2 axis (1 to 256, drawn as 0 to 8), the value on a log-10 axis.
fn chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    unit: &str,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.2..8.2, y.log_scale())?;
    chart
        .configure_mesh()
        .x_labels(9)
        .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round()))
        .y_label_formatter(&|y| format!("{y}"))
        .x_desc("concurrent requests")
        .y_desc(unit)
        .light_line_style(BLACK.mix(0.08))
        .bold_line_style(BLACK.mix(0.2))
        .draw()?;
    Ok(chart)
}

fn line<C: Color + Copy + 'static>(
    chart: &mut Chart<'_, '_>,
    points: &[&Point],
    value: impl Fn(&Point) -> f64,
    colour: C,
    label: &str,
) -> Result<()> {
    let data: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.concurrency.log2(), value(p)))
        .collect();
    chart
        .draw_series(LineSeries::new(data.clone(), colour.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
    chart.draw_series(
        data.into_iter()
            .map(|xy| Circle::new(xy, 3, colour.filled())),
    )?;
    Ok(())
}

fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>, at: SeriesLabelPosition) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(at)
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13).into_font().color(&BLACK))
        .draw()?;
    Ok(())
}

/// Draws with plotters into a string, then makes it a book diagram: the first line the book
/// expects, a title for screen readers, black as `currentColor`, no blank lines.
fn write(
    path: &PathBuf,
    title: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root)?;
        root.present()?;
    }
    let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or("plot");
    let head = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" class=\"diagram\" \
         role=\"img\" aria-labelledby=\"{id}-title\">\n<title id=\"{id}-title\">{title}</title>",
        SIZE.0, SIZE.1
    );
    let body = svg
        .split_once('\n')
        .map(|(_, rest)| rest)
        .ok_or("plotters wrote no SVG")?
        .replace("#000000", "currentColor");
    let lines: Vec<&str> = std::iter::once(head.as_str())
        .chain(body.lines().filter(|l| !l.trim().is_empty()))
        .collect();
    fs::write(path, lines.join("\n") + "\n")?;
    tracing::info!(file = %path.file_name().unwrap_or_default().to_string_lossy(), "wrote");
    Ok(())
}

fn read_load(path: &Path) -> Result<Vec<Point>> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // protocol,route,concurrency,connections,streams,requests_per_second,p50_ms,p99_ms,errors
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let number = |i: usize| -> Result<f64> {
                let field = f.get(i).ok_or_else(|| format!("short line {line:?}"))?;
                Ok(field.trim().parse::<f64>()?)
            };
            Ok(Point {
                protocol: f[0].to_owned(),
                route: f.get(1).unwrap_or(&"").to_string(),
                concurrency: number(2)?,
                requests_per_second: number(5)?,
                p50_ms: number(6)?,
                p99_ms: number(7)?,
            })
        })
        .collect()
}

/// slowhttptest's CSV: `Seconds,Closed,Pending,Connected,Service Available`; returns
/// (second, connected).
fn read_attack(path: &Path) -> Result<Vec<(f64, f64)>> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<f64> = line
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<std::result::Result<_, _>>()?;
            match f[..] {
                [second, _, _, connected, ..] => Ok((second, connected)),
                _ => Err(format!("{}: an unexpected line {line:?}", path.display()).into()),
            }
        })
        .collect()
}
