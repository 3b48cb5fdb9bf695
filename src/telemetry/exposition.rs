//! The Prometheus text format 0.0.4 from prometheus-client's OpenMetrics
//! text, for scrapers that do not ask for OpenMetrics (and for `promtool
//! check metrics`). The two differ only in a few lines: OpenMetrics names a
//! counter family without its `_total` suffix in `# HELP` / `# TYPE` and
//! ends with `# EOF`, and has `# UNIT` lines; samples are the same.

/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics text.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Rewrites OpenMetrics text (without `# EOF`) into the 0.0.4 format.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 256);
    let mut pending_help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // The TYPE line that follows says whether the name changes.
            pending_help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" | "info" | "stateset" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some(help) = pending_help.take() {
                let text = help.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_suffix_and_openmetrics_lines_go() {
        let om = "# HELP rpcs RPCs.\n# TYPE rpcs counter\nrpcs_total{a=\"b\"} 3\n\
                  # HELP lat Latency.\n# TYPE lat histogram\n# UNIT lat seconds\nlat_count 1\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP rpcs_total RPCs.\n# TYPE rpcs_total counter\nrpcs_total{a=\"b\"} 3\n\
             # HELP lat Latency.\n# TYPE lat histogram\nlat_count 1\n"
        );
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
