//! `stampede image build`: the `FROM scratch` image through the Docker API.

use crate::cli::{ImageBuildArgs, ImageCommand};

pub fn run(c: ImageCommand) -> anyhow::Result<i32> {
    match c {
        ImageCommand::Build(args) => build(args),
    }
}

fn build(args: ImageBuildArgs) -> anyhow::Result<i32> {
    let binary = match args.binary {
        Some(b) => b,
        None => stampede_docker::default_binary().map_err(|e| super::with_code(e, 2))?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let docker = stampede_docker::DockerRuntime::connect().await.map_err(|e| super::with_code(e, 3))?;
        let id = stampede_docker::build_image(docker.client(), &binary, &args.tag, args.filler_mb)
            .await
            .map_err(|e| super::with_code(e, 3))?;
        super::out(format!("built {} ({id}) from {}\n", args.tag, binary.display()));
        for host in &args.node_hosts {
            let copied = stampede_docker::copy_image(docker.client(), &args.tag, host)
                .await
                .map_err(|e| super::with_code(e, 3))?;
            super::out(format!("loaded {} ({copied}) onto {host}\n", args.tag));
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
