//! `stampede report DIR`: re-render a results folder's report.html and print its summary.

use crate::cli::ReportArgs;

pub fn run(args: ReportArgs) -> anyhow::Result<i32> {
    let results = stampede_report::load_results(&args.dir).map_err(|e| super::with_code(e, 2))?;
    // A folder from a run that died before writing instances.csv still gets a report.
    let instances = match stampede_report::load_instances(&args.dir) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("warning: {e}; the report has no per-instance plots");
            Vec::new()
        }
    };
    let page = stampede_report::write_report_html(&args.dir, &results, &instances)?;
    super::out(stampede_report::summary_text(&results, Some(&args.dir)));
    super::out(format!("  report     {}\n", page.display()));
    Ok(0)
}
