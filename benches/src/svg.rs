//! A small SVG line-chart writer (log-scaled axes) for the ladder chart; no dependencies.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (x, y); both must be positive (the axes are logarithmic).
    pub points: Vec<(f64, f64)>,
    /// Dashed line (used for rtos-heap's own schemes... or any series to set apart).
    pub dashed: bool,
}

/// A chart with logarithmic x and y axes.
#[derive(Debug, Clone)]
pub struct LogLogChart {
    /// Title above the plot.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

const W: f64 = 820.0;
const H: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 10] = [
    "#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#9467bd", "#1f77b4", "#2ca02c", "#17becf",
    "#7f7f7f", "#bcbd22",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Powers of ten covering `lo..=hi` (at least one decade).
fn decades(lo: f64, hi: f64) -> (i32, i32) {
    let a = lo.log10().floor() as i32;
    let b = (hi.log10().ceil() as i32).max(a + 1);
    (a, b)
}

impl LogLogChart {
    /// Renders the chart as an SVG document. The x axis is log2 (ticks at the data's x values),
    /// the y axis log10 (ticks at powers of ten).
    ///
    /// # Panics
    /// If a point is not positive.
    pub fn render(&self) -> String {
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            assert!(x > 0.0 && y > 0.0, "log chart needs positive values");
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
        }
        if xmin > xmax {
            (xmin, xmax, ymin, ymax) = (1.0, 10.0, 1.0, 10.0);
        }
        if xmin == xmax {
            xmax = xmin * 2.0;
        }
        let (d0, d1) = decades(ymin, ymax);
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let sx = |x: f64| LEFT + (x.log2() - xmin.log2()) / (xmax.log2() - xmin.log2()) * pw;
        let sy = |y: f64| TOP + ph - (y.log10() - f64::from(d0)) / f64::from(d1 - d0) * ph;

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="28" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            LEFT + pw / 2.0,
            escape(&self.title)
        );
        // Y grid and ticks.
        for d in d0..=d1 {
            let y = sy(10f64.powi(d));
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                y + 4.0,
                tick(10f64.powi(d))
            );
        }
        // X ticks at the data's x values.
        let mut xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        for x in xs {
            let px = sx(x);
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#eee"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 18.0,
                tick(x)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            H - 18.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(20,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        for (i, ser) in self.series.iter().enumerate() {
            let c = COLOURS[i % COLOURS.len()];
            let dash = if ser.dashed {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            };
            let path: Vec<String> = ser
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            );
            for &(x, y) in &ser.points {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"/>"#,
                    sx(x),
                    sy(y)
                );
            }
            let ly = TOP + 10.0 + 20.0 * i as f64;
            let lx = LEFT + pw + 15.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 24.0,
                lx + 30.0,
                ly + 4.0,
                escape(&ser.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A compact tick label: 16, 1k, 16k, 1M, 0.1 …
fn tick(v: f64) -> String {
    if v >= 1e6 && (v / 1e6).fract() == 0.0 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 && (v / 1e3).fract() == 0.0 {
        format!("{}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_points_on_log_axes() {
        let c = LogLogChart {
            title: "t <1>".into(),
            x_label: "K".into(),
            y_label: "instr".into(),
            series: vec![Series {
                label: "a".into(),
                points: vec![(16.0, 10.0), (64.0, 1000.0)],
                dashed: true,
            }],
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("t &lt;1&gt;"));
        // y spans decades 10^1..10^3: 10 sits on the bottom edge, 1000 on the top edge.
        assert!(svg.contains(&format!("cx=\"{LEFT:.1}\" cy=\"{:.1}\"", H - BOTTOM)));
        assert!(svg.contains(&format!("cx=\"{:.1}\" cy=\"{TOP:.1}\"", W - RIGHT)));
        assert!(svg.contains("stroke-dasharray"));
        assert_eq!(tick(16384.0), "16384");
        assert_eq!(tick(1000.0), "1k");
    }
}
