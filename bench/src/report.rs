//! Results of a benchmark run: one row per metric, printed as a table or as JSON.
//!
//! Every suite measures our implementation next to a peer in the same run and reports the
//! ratio, so numbers from different machines stay comparable. JSON shape (a list):
//! `{metric, ours, peer, peer_value, unit, ratio, goal, met}`.

use serde::Serialize;

/// Whether a larger or a smaller value is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Throughput-like metrics: ratio = ours / peer.
    Higher,
    /// Cost-like metrics (latency, bytes, cycles): ratio = ours / peer, goal is an upper bound.
    Lower,
}

/// One measured metric compared with a peer.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured, e.g. `wire.parse_verify_data_1452`.
    pub metric: String,
    /// Our value.
    pub ours: f64,
    /// The name of the peer measured in the same run.
    pub peer: String,
    /// The peer's value (NaN serialises as null when there is none).
    pub peer_value: Option<f64>,
    /// Unit of `ours` and `peer_value`.
    pub unit: String,
    /// `ours / peer_value`.
    pub ratio: Option<f64>,
    /// The goal as text, e.g. `ratio <= 1.5` or `ratio >= 5`.
    pub goal: String,
    /// Whether the goal was met (None when there is no goal).
    pub met: Option<bool>,
}

impl Row {
    /// A row comparing `ours` with `peer_value`; `goal` is a ratio bound in the direction of `better`.
    pub fn compare(
        metric: impl Into<String>,
        unit: impl Into<String>,
        ours: f64,
        peer: impl Into<String>,
        peer_value: f64,
        better: Better,
        goal_ratio: Option<f64>,
    ) -> Row {
        let ratio = if peer_value != 0.0 {
            Some(ours / peer_value)
        } else {
            None
        };
        let (goal, met) = match (goal_ratio, ratio) {
            (Some(g), Some(r)) => match better {
                Better::Higher => (format!("ratio >= {g}"), Some(r >= g)),
                Better::Lower => (format!("ratio <= {g}"), Some(r <= g)),
            },
            (Some(g), None) => match better {
                Better::Higher => (format!("ratio >= {g}"), Some(false)),
                Better::Lower => (format!("ratio <= {g}"), Some(false)),
            },
            (None, _) => (String::new(), None),
        };
        Row {
            metric: metric.into(),
            ours,
            peer: peer.into(),
            peer_value: Some(peer_value),
            unit: unit.into(),
            ratio,
            goal,
            met,
        }
    }

    /// A row with no peer (an absolute figure, e.g. bytes per PE), with an optional bound.
    pub fn absolute(
        metric: impl Into<String>,
        unit: impl Into<String>,
        ours: f64,
        goal: Option<(Better, f64)>,
    ) -> Row {
        let (goal, met) = match goal {
            Some((Better::Higher, g)) => (format!(">= {g}"), Some(ours >= g)),
            Some((Better::Lower, g)) => (format!("<= {g}"), Some(ours <= g)),
            None => (String::new(), None),
        };
        Row {
            metric: metric.into(),
            ours,
            peer: String::new(),
            peer_value: None,
            unit: unit.into(),
            ratio: None,
            goal,
            met,
        }
    }
}

impl Row {
    /// A metric that could not be measured in this run: `ours` is NaN (JSON `null`), `peer`
    /// says why, and there is no ratio.
    pub fn skipped(metric: impl Into<String>, unit: impl Into<String>, reason: &str) -> Row {
        Row {
            metric: metric.into(),
            ours: f64::NAN,
            peer: format!("skipped: {reason}"),
            peer_value: None,
            unit: unit.into(),
            ratio: None,
            goal: String::new(),
            met: None,
        }
    }
}

/// Prints rows as an aligned table.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<44} {:>14} {:>14} {:<16} {:>9} {:<14} {:<4}",
        "metric", "ours", "peer value", "peer", "ratio", "goal", "met"
    );
    for r in rows {
        println!(
            "{:<44} {:>14} {:>14} {:<16} {:>9} {:<14} {:<4}",
            r.metric,
            format!("{} {}", fmt_num(r.ours), r.unit),
            r.peer_value.map(fmt_num).unwrap_or_default(),
            r.peer,
            r.ratio.map(|x| format!("{x:.2}")).unwrap_or_default(),
            r.goal,
            match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            }
        );
    }
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x.abs() >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x.abs() >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.2}")
    }
}

/// Prints rows as a JSON list.
pub fn print_json(rows: &[Row]) {
    match serde_json::to_string_pretty(rows) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot serialise results: {e}"),
    }
}
