//! The HTML report opened in headless Chromium: the heap maps and the charts must be laid out and
//! drawn. Ignored (with the reason) when the build script finds no Chromium, unless
//! `RTOS_HEAP_REQUIRE_CHROMIUM` is set (as `.ci/cli.sh` does after installing it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, id_trace, write};

fn chromium() -> PathBuf {
    let candidates = std::env::var_os("CHROMIUM")
        .map(|c| vec![PathBuf::from(c)])
        .unwrap_or_else(|| {
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .map(PathBuf::from)
                .collect()
        });
    for c in candidates {
        if Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("no chromium found (install Debian's `chromium` package, or set CHROMIUM)");
}

fn headless(chrome: &Path, args: &[&str], page: &Path) -> std::process::Output {
    let url = format!("file://{}", page.display());
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(args)
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `data-name="value"` of the `<body>` tag in a dumped DOM.
fn body_attr(dom: &str, name: &str) -> u64 {
    let body = &dom[dom.find("<body").expect("a body")..];
    let body = &body[..body.find('>').unwrap()];
    let key = format!("data-{name}=\"");
    let v = &body[body
        .find(&key)
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        + key.len()..];
    v[..v.find('"').unwrap()].parse().unwrap()
}

#[test]
#[cfg_attr(
    chromium_absent,
    ignore = "needs Chromium (Debian's `chromium` package, or CHROMIUM=path)"
)]
fn report_renders_heap_maps_and_charts_in_chromium() {
    let chrome = chromium();
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.ids", &id_trace(21, 4000, 200, 0.55));
    let page = dir.path().join("report.html");
    bin()
        .args([
            "replay",
            trace.to_str().unwrap(),
            "--heap-size",
            "8K",
            "--scheme",
            "heap4,heap5",
        ])
        .arg("--report")
        .arg(&page)
        .assert()
        .code(1); // some allocations fail at 8K: the maps then show the first failure

    // The page's own script counts what the browser laid out.
    let dom = String::from_utf8(headless(&chrome, &["--dump-dom"], &page).stdout).unwrap();
    assert!(body_attr(&dom, "maps") >= 4, "two maps per scheme");
    assert!(body_attr(&dom, "blocks") > 20, "allocated blocks drawn");
    assert_eq!(body_attr(&dom, "lines"), 6, "three lines per chart");
    assert_eq!(body_attr(&dom, "map-width"), 960);
    // The page's checks: every colour drawn is one the legend explains, every block has its
    // tooltip (allocation line and age where known), failed allocations are marked on the time
    // axis, the charts stay inside their frames, and a map zooms and resets.
    assert_eq!(
        body_attr(&dom, "legend-ok"),
        1,
        "colours outside the legend"
    );
    assert_eq!(body_attr(&dom, "tooltips-ok"), 1);
    assert_eq!(
        body_attr(&dom, "traced-blocks"),
        body_attr(&dom, "blocks"),
        "every allocated block names its allocation"
    );
    let failures: u64 = json_failures(&trace);
    assert!(failures > 0, "the trace fails at 8K: the marks are tested");
    assert_eq!(
        body_attr(&dom, "fail-marks"),
        failures,
        "one mark per failure"
    );
    assert_eq!(body_attr(&dom, "series-inside"), 1);
    assert_eq!(body_attr(&dom, "zoom-ok"), 1);

    // The screenshot shows the pictures: many coloured (not grey or white) pixels.
    let png = dir.path().join("shot.png");
    let arg = format!("--screenshot={}", png.display());
    headless(&chrome, &["--window-size=1040,1100", &arg], &page);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1040, 1100));
    let channels = info.line_size / info.width as usize;
    let colourful = buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| {
            let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
            (r - g).abs().max((g - b).abs()).max((r - b).abs()) > 60
        })
        .count();
    let share = colourful as f64 / (info.width * info.height) as f64;
    assert!(share > 0.02, "only {:.2} % coloured pixels", share * 100.0);
}

/// Failed allocations of heap_4 and heap_5 at 8K, from the JSON report (at most 500 each).
fn json_failures(trace: &Path) -> u64 {
    let out = bin()
        .args([
            "replay",
            trace.to_str().unwrap(),
            "--heap-size",
            "8K",
            "--scheme",
            "heap4,heap5",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["replays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["failures"].as_array().unwrap().len() as u64)
        .sum()
}
