//! Results: one row per (system, workload, guarantee) as JSON, as Markdown tables with ratios to
//! Kafka Streams, and as an SVG bar chart of throughput ([`chart`], which Nexmark's report
//! draws too).

use std::fmt::Write as _;

use benches::Guarantee;
use serde_json::{json, Value};

use crate::run::{Job, Live, Throughput};
use crate::system::System;

/// The measurements of one (system, workload, guarantee).
pub struct Row {
    /// What ran.
    pub job: Job,
    /// The throughput run, or why it failed.
    pub throughput: Result<Throughput, String>,
    /// The live run (when run), or why it failed.
    pub live: Option<Result<Live, String>>,
}

impl Row {
    /// Records per second of a throughput run whose output was right.
    fn rate(&self) -> Option<f64> {
        self.throughput
            .as_ref()
            .ok()
            .filter(|t| t.check.ok())
            .map(|t| t.records_per_s)
    }

    /// Whether every run of the row finished with the reference output.
    pub fn ok(&self) -> bool {
        let live_ok = match &self.live {
            None => true,
            Some(Ok(live)) => live.check.ok(),
            Some(Err(_)) => false,
        };
        self.rate().is_some() && live_ok
    }

    /// The row as JSON.
    fn to_json(&self) -> Value {
        let throughput = match &self.throughput {
            Ok(t) => json!({
                "records": t.records,
                "startup_s": t.startup_s,
                "first_output_s": t.first_output_s,
                "seconds": t.seconds,
                "records_per_s": t.records_per_s,
                "cpu_s": t.usage.cpu_s,
                "cpu_us_per_record": t.usage.cpu_s * 1e6 / t.records.max(1) as f64,
                "peak_rss_mib": t.usage.peak_rss_mib,
                "end": t.end.name(),
                "outputs": t.check.actual.count,
                "expected_outputs": t.check.expected.count,
                "checksum": t.check.actual.hex(),
                "expected_checksum": t.check.expected.hex(),
                "output_check": t.check.summary(),
            }),
            Err(error) => json!({ "error": error }),
        };
        let live = self.live.as_ref().map(|live| match live {
            Ok(l) => json!({
                "records": l.records,
                "rate": l.rate,
                "latency_ms": l.latency.map(|l| l.to_json()),
                "end": l.end.name(),
                "output_check": l.check.summary(),
            }),
            Err(error) => json!({ "error": error }),
        });
        json!({
            "system": self.job.system.name(),
            "workload": self.job.workload.name(),
            "guarantee": self.job.guarantee.name(),
            "throughput": throughput,
            "live": live,
        })
    }
}

/// The results and the setup that produced them as one JSON document.
pub fn document(setup: Value, rows: &[Row]) -> Value {
    json!({
        "setup": setup,
        "runs": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "ratios_to_kafka_streams": ratios(rows)
            .into_iter()
            .map(|(job, ratio)| json!({
                "system": job.system.name(),
                "workload": job.workload.name(),
                "guarantee": job.guarantee.name(),
                "throughput_ratio": ratio,
            }))
            .collect::<Vec<_>>(),
    })
}

/// Throughput of every peer row relative to Kafka Streams on the same workload and guarantee.
fn ratios(rows: &[Row]) -> Vec<(Job, f64)> {
    rows.iter()
        .filter(|r| !matches!(r.job.system, System::KafkaStreams | System::Ceiling))
        .filter_map(|r| Some((r.job, r.rate()? / kafka_streams_rate(rows, &r.job)?)))
        .collect()
}

/// Kafka Streams' records/s on `job`'s workload and guarantee.
fn kafka_streams_rate(rows: &[Row], job: &Job) -> Option<f64> {
    rows.iter()
        .find(|r| {
            r.job.system == System::KafkaStreams
                && r.job.workload == job.workload
                && r.job.guarantee == job.guarantee
        })?
        .rate()
}

/// A number of records per second, e.g. `12.3 k`.
pub fn rate(value: f64) -> String {
    if value >= 1_000.0 {
        format!("{:.1} k", value / 1_000.0)
    } else {
        format!("{value:.0}")
    }
}

/// The live columns of a row: p50, p99 (ms).
fn live_cells(row: &Row) -> (String, String) {
    match &row.live {
        Some(Ok(Live {
            latency: Some(l), ..
        })) => (l.p50_ms.to_string(), l.p99_ms.to_string()),
        Some(Err(_)) => ("failed".into(), "failed".into()),
        _ => ("–".into(), "–".into()),
    }
}

/// The results as Markdown: every row, then the throughput ratios.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | guarantee | system | records/s | × Kafka Streams | startup s | CPU s | CPU µs/record | peak RSS MiB | live p50 ms | live p99 ms | output |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        let job = &row.job;
        let (p50, p99) = live_cells(row);
        let ratio = match (job.system, row.rate(), kafka_streams_rate(rows, job)) {
            (System::Ceiling, ..) => "–".to_string(),
            (_, Some(own), Some(ks)) => format!("{:.2}", own / ks),
            _ => "–".to_string(),
        };
        let _ = match &row.throughput {
            Ok(t) => {
                let live_check = match &row.live {
                    Some(Ok(l)) if !l.check.ok() => format!("; live: {}", l.check.summary()),
                    Some(Err(e)) => format!("; live failed: {}", first_line(e)),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {ratio} | {:.1} | {:.1} | {:.0} | {:.0} | {p50} | {p99} | {}{live_check} |",
                    job.workload,
                    job.guarantee,
                    job.system.label(),
                    rate(t.records_per_s),
                    t.startup_s,
                    t.usage.cpu_s,
                    t.usage.cpu_s * 1e6 / t.records.max(1) as f64,
                    t.usage.peak_rss_mib,
                    t.check.summary(),
                )
            }
            Err(error) => writeln!(
                out,
                "| {} | {} | {} | – | – | – | – | – | – | {p50} | {p99} | failed: {} |",
                job.workload,
                job.guarantee,
                job.system.label(),
                first_line(error)
            ),
        };
    }
    let ratios = ratios(rows);
    if !ratios.is_empty() {
        out.push_str(
            "\nThroughput relative to Kafka Streams (records/s ÷ Kafka Streams' records/s):\n\n\
             | workload | guarantee | system | ratio |\n|---|---|---|---:|\n",
        );
        for (job, ratio) in ratios {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {ratio:.2} |",
                job.workload,
                job.guarantee,
                job.system.label()
            );
        }
    }
    out
}

/// The first line of an error, for table cells.
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().replace('|', "/")
}

/// Fill colour of a system's bars.
fn colour(system: System) -> &'static str {
    match system {
        System::KafkaStreams => "#4e79a7",
        System::Quix => "#f28e2b",
        System::Streamlib => "#59a14f",
        System::Ceiling => "#9d9d9d",
    }
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One bar of a chart: a system's value, `None` when its run failed or its output was wrong.
pub struct Bar {
    /// Whose bar.
    pub system: System,
    /// Its height.
    pub value: Option<f64>,
}

/// Bars side by side under one label (a guarantee).
pub struct Group {
    /// The label under the bars.
    pub label: String,
    /// The bars, left to right.
    pub bars: Vec<Bar>,
}

/// A panel of a chart, with its own scale (a workload, a query).
pub struct Panel {
    /// Its title.
    pub title: String,
    /// Its groups of bars, left to right.
    pub groups: Vec<Group>,
}

/// A bar chart of records/s: one panel per workload (each with its own scale), a group of
/// bars per guarantee, a bar per system. A run that failed or produced a wrong output has no
/// bar, only a label saying so.
pub fn svg(rows: &[Row], title: &str, subtitle: &str) -> String {
    let mut panels: Vec<Panel> = Vec::new();
    for row in rows {
        let title = row.job.workload.to_string();
        let at = match panels.iter().position(|p| p.title == title) {
            Some(at) => at,
            None => {
                panels.push(Panel {
                    title,
                    groups: Vec::new(),
                });
                panels.len() - 1
            }
        };
        add_bar(
            &mut panels[at],
            row.job.guarantee,
            Bar {
                system: row.job.system,
                value: row.rate(),
            },
        );
    }
    chart(
        &panels,
        title,
        subtitle,
        "records/s (each panel its own scale)",
    )
}

/// Adds `bar` to `panel`'s group of `guarantee`, the groups in at-least-once, exactly-once order.
pub fn add_bar(panel: &mut Panel, guarantee: Guarantee, bar: Bar) {
    let label = guarantee.to_string();
    match panel.groups.iter_mut().find(|g| g.label == label) {
        Some(group) => group.bars.push(bar),
        None => {
            panel.groups.push(Group {
                label,
                bars: vec![bar],
            });
            panel
                .groups
                .sort_by_key(|g| g.label != Guarantee::Alos.to_string());
        }
    }
}

/// A bar chart: one panel per entry of `panels`, each with its own scale, `axis` naming the
/// values; the legend has every system with a bar.
pub fn chart(panels: &[Panel], title: &str, subtitle: &str, axis: &str) -> String {
    const PANEL_W: f64 = 270.0;
    // Room between panels for the next panel's axis labels.
    const GAP: f64 = 60.0;
    const PLOT_H: f64 = 240.0;
    const TOP: f64 = 90.0;
    const LEFT: f64 = 60.0;
    let mut systems: Vec<System> = Vec::new();
    for bar in panels.iter().flat_map(|p| &p.groups).flat_map(|g| &g.bars) {
        if !systems.contains(&bar.system) {
            systems.push(bar.system);
        }
    }
    let width = LEFT + PANEL_W * panels.len() as f64 + 20.0;
    let height = TOP + PLOT_H + 60.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>\n\
         <text x=\"{LEFT}\" y=\"40\" fill=\"#555\">{}</text>\n",
        escape(title),
        escape(subtitle)
    );
    for (i, system) in systems.iter().enumerate() {
        let x = LEFT + i as f64 * 150.0;
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"52\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"62\">{}</text>",
            colour(*system),
            x + 16.0,
            escape(system.label())
        );
    }
    for (p, panel) in panels.iter().enumerate() {
        let x0 = LEFT + p as f64 * PANEL_W;
        let max = panel
            .groups
            .iter()
            .flat_map(|g| &g.bars)
            .filter_map(|b| b.value)
            .fold(0.0_f64, f64::max);
        let (scale, ticks) = nice_ceiling(max.max(1.0));
        for tick in 0..=ticks {
            let value = scale * f64::from(tick) / f64::from(ticks);
            let y = TOP + PLOT_H - PLOT_H * f64::from(tick) / f64::from(ticks);
            let _ = writeln!(
                out,
                "<line x1=\"{x0}\" x2=\"{:.0}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
                x0 + PANEL_W - GAP,
                x0 - 4.0,
                y + 4.0,
                rate(value)
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
            x0 + (PANEL_W - GAP) / 2.0,
            TOP - 12.0,
            escape(&panel.title)
        );
        let group_w = (PANEL_W - GAP - 10.0) / panel.groups.len().max(1) as f64;
        for (g, group) in panel.groups.iter().enumerate() {
            let gx = x0 + 10.0 + g as f64 * group_w;
            let bar_w = (group_w - 20.0) / group.bars.len().max(1) as f64;
            for (b, bar) in group.bars.iter().enumerate() {
                let x = gx + b as f64 * bar_w;
                let cx = x + bar_w / 2.0;
                match bar.value {
                    Some(value) => {
                        let h = PLOT_H * value / scale;
                        let y = TOP + PLOT_H - h;
                        let _ = writeln!(
                            out,
                            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/>\
                             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">{}</text>",
                            bar_w - 3.0,
                            colour(bar.system),
                            y - 3.0,
                            rate(value).replace(" k", "k")
                        );
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\" \
                             fill=\"#c00\" transform=\"rotate(-90 {cx:.1} {:.1})\">failed/wrong</text>",
                            TOP + PLOT_H - 4.0,
                            TOP + PLOT_H - 4.0
                        );
                    }
                }
            }
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                gx + (group_w - 20.0) / 2.0,
                TOP + PLOT_H + 16.0,
                escape(&group.label)
            );
        }
    }
    let _ = writeln!(
        out,
        "<text x=\"14\" y=\"{:.0}\" transform=\"rotate(-90 14 {:.0})\" text-anchor=\"middle\" \
         fill=\"#555\">{}</text>\n</svg>",
        TOP + PLOT_H / 2.0,
        TOP + PLOT_H / 2.0,
        escape(axis)
    );
    out
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `value`, and how many gridline steps divide
/// it into round numbers.
fn nice_ceiling(value: f64) -> (f64, u32) {
    let magnitude = 10_f64.powf(value.log10().floor());
    [(1.0, 5), (2.0, 4), (2.5, 5), (5.0, 5), (10.0, 5)]
        .into_iter()
        .map(|(m, ticks)| (m * magnitude, ticks))
        .find(|(top, _)| *top >= value)
        .unwrap_or((10.0 * magnitude, 5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_numbers() {
        assert_eq!(nice_ceiling(1.0), (1.0, 5));
        assert_eq!(nice_ceiling(13_000.0), (20_000.0, 4));
        assert_eq!(nice_ceiling(21_000.0), (25_000.0, 5));
        assert_eq!(nice_ceiling(260_000.0), (500_000.0, 5));
    }

    #[test]
    fn rates_read_as_thousands() {
        assert_eq!(rate(12_345.0), "12.3 k");
        assert_eq!(rate(950.0), "950");
    }
}
