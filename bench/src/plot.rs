//! SVG bar charts of a run (`--plots DIR`): one file per metric that has a peer, with a bar
//! for ours and one for the peer, named after the metric (`DIR/<metric>.svg`).

use std::path::Path;

use plotters::prelude::*;

use crate::report::Row;

/// Writes one chart per row with a peer value into `dir` (created if missing). Returns the
/// number of files written.
pub fn write(dir: &Path, rows: &[Row]) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = 0;
    for r in rows {
        let Some(peer) = r.peer_value else { continue };
        if !(r.ours.is_finite() && peer.is_finite()) {
            continue;
        }
        let name: String = r
            .metric
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}.svg"));
        chart(&path, r, peer).map_err(|e| format!("{}: {e}", path.display()))?;
        written += 1;
    }
    Ok(written)
}

fn chart(path: &Path, r: &Row, peer: f64) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (480, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = r.ours.max(peer).max(f64::MIN_POSITIVE) * 1.15;
    let labels = ["ours".to_string(), r.peer.clone()];
    let mut chart = ChartBuilder::on(&root)
        .caption(&r.metric, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d((0u32..2u32).into_segmented(), 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(r.unit.as_str())
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    let colors = [RGBColor(0x1f, 0x77, 0xb4), RGBColor(0xaa, 0xaa, 0xaa)];
    chart.draw_series([r.ours, peer].iter().enumerate().map(|(i, v)| {
        let i = i as u32;
        Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), *v),
            ],
            colors[i as usize].filled(),
        )
    }))?;
    if let Some(ratio) = r.ratio {
        root.draw(&Text::new(
            format!("ratio {ratio:.2}  goal {}", r.goal),
            (90, 40),
            ("sans-serif", 13),
        ))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Better;

    #[test]
    fn one_chart_per_compared_metric_with_both_bars() {
        let dir = std::env::temp_dir().join(format!("bench-plot-test-{}", std::process::id()));
        let rows = vec![
            Row::compare(
                "x.speed",
                "B/s",
                300.0,
                "peer-a",
                100.0,
                Better::Higher,
                Some(5.0),
            ),
            Row::absolute("x.memory", "B", 1000.0, None),
        ];
        let n = write(&dir, &rows).expect("plots written");
        assert_eq!(n, 1, "rows without a peer get no chart");
        let svg = std::fs::read_to_string(dir.join("x.speed.svg")).expect("chart file");
        assert!(!dir.join("x.memory.svg").exists());
        let _ = std::fs::remove_dir_all(&dir);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("x.speed") && svg.contains("peer-a") && svg.contains("ratio 3.00"));
        // Background plus two bars at least.
        assert!(svg.matches("<rect").count() >= 3);
    }
}
