//! `stampede compare DIR DIR…`: runs side by side in the terminal and in compare.html.

use crate::cli::CompareArgs;

pub fn run(args: CompareArgs) -> anyhow::Result<i32> {
    let runs = args
        .dirs
        .iter()
        .map(|d| stampede_report::ComparedRun::load(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| super::with_code(e, 2))?;
    super::out(stampede_report::compare_text(&runs));
    let page = stampede_report::write_compare_html(&args.out, &runs)?;
    super::out(format!("  compare    {}\n", page.display()));
    Ok(0)
}
