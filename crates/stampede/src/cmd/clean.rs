//! `stampede clean`: remove leftovers of any run (or one run) by the `stampede.run` label.

use stampede_core::scenario::RuntimeKind;

use crate::cli::CleanArgs;

pub fn run(args: CleanArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let mut total = 0;
        let mut unreachable = Vec::new();
        // Process children never outlive their parent (PR_SET_PDEATHSIG): only container
        // runtimes can leave anything behind.
        for kind in [RuntimeKind::Swarm, RuntimeKind::Docker] {
            match stampede_tiers::runtimes::connect(kind, std::env::current_exe()?).await {
                Ok(r) => {
                    let n = r.remove_run(args.run.as_deref()).await?;
                    if n > 0 {
                        super::out(format!("removed {n} {kind} object(s)\n"));
                    }
                    total += n;
                }
                Err(e) => unreachable.push(e.to_string()),
            }
        }
        for u in &unreachable {
            eprintln!("skipped: {u}");
        }
        if total == 0 {
            super::out("nothing to clean\n");
        }
        Ok(0)
    })
}
