//! `stampede clean`: remove leftovers of any run (or one run) by the `stampede.run` label, on
//! every runtime of this binary that is there to ask.

use crate::cli::CleanArgs;

pub fn run(args: CleanArgs) -> anyhow::Result<i32> {
    let registry = stampede::registry::this_binary()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let mut total = 0;
        for provider in registry.providers() {
            let name = provider.name();
            if args.runtime.as_deref().is_some_and(|r| r != name) {
                continue;
            }
            match provider.clean(args.run.as_deref()).await {
                Ok(Some(n)) => {
                    if n > 0 {
                        super::out(format!("removed {n} {name} object(s)\n"));
                    }
                    total += n;
                }
                Ok(None) => tracing::debug!("{name}: nothing there to clean"),
                Err(e) => eprintln!("{name}: {}", e.chain()),
            }
        }
        if total == 0 {
            super::out("nothing to clean\n");
        }
        Ok(0)
    })
}
