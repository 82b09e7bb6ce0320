//! The stampede image: `FROM scratch` plus the statically linked `stampede` binary at
//! `/stampede` (the entrypoint), optionally a `/filler` file to study how image size affects
//! start-up.
//!
//! No registry is reachable on our machines, so the image is built locally through the Engine
//! API's build endpoint from a build context assembled in memory: nothing on disk, no other tool.
//! `docker/Dockerfile` at the repository root builds the same image with the docker CLI.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{BuildImageOptionsBuilder, PruneImagesOptionsBuilder};
use bollard::{body_try_stream, Docker};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use crate::error::ImageError;

/// The command that builds the static binary, quoted in every message that needs it.
///
/// `relocation-model=static` links a fixed-address executable instead of a static PIE: a PIE
/// relocates ~570 KiB of pointers at every start, and those relocated pages are private to
/// each process — each container and each process-runtime child paid them again. Without
/// relocation they stay shared pages of the file. (The binary loses address-space layout
/// randomisation; it is a load generator run on machines its user owns.)
pub const STATIC_BUILD_COMMAND: &str =
    "RUSTFLAGS=\"-C target-feature=+crt-static -C relocation-model=static\" cargo build --release --target x86_64-unknown-linux-gnu";

/// Where [`STATIC_BUILD_COMMAND`] puts the binary, relative to the workspace root.
pub const STATIC_BINARY_PATH: &str = "target/x86_64-unknown-linux-gnu/release/stampede";

/// Label on every image [`build_image`] makes.
pub const IMAGE_LABEL: &str = "stampede.image";

const MIB: usize = 1024 * 1024;
const TAR_BLOCK: usize = 512;

/// Whether `path` is an x86-64 ELF executable without a program interpreter (`PT_INTERP`),
/// i.e. one that runs in an image with no dynamic loader and no libc.
pub fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    const PT_INTERP: u32 = 3;
    const EM_X86_64: u16 = 62;
    let mut file = std::fs::File::open(path)?;
    let mut head = [0u8; 64];
    if file.read(&mut head)? < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return Ok(false); // not a little-endian 64-bit ELF
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    if u16_at(&head, 0x12) != EM_X86_64 {
        return Ok(false);
    }
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().expect("8 bytes"));
    let (phentsize, phnum) = (usize::from(u16_at(&head, 0x36)), usize::from(u16_at(&head, 0x38)));
    let mut table = vec![0u8; phentsize * phnum];
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(phoff))?;
    file.read_exact(&mut table)?;
    Ok(table
        .chunks_exact(phentsize.max(4))
        .all(|ph| u32::from_le_bytes(ph[..4].try_into().expect("4 bytes")) != PT_INTERP))
}

/// The binary to put in the image: this executable if it is static, else
/// [`STATIC_BINARY_PATH`] under the current directory if that exists.
pub fn default_binary() -> Result<PathBuf, ImageError> {
    if let Ok(exe) = std::env::current_exe() {
        if is_static_elf(&exe).unwrap_or(false) {
            return Ok(exe);
        }
    }
    let candidate = PathBuf::from(STATIC_BINARY_PATH);
    if candidate.is_file() {
        return Ok(candidate);
    }
    Err(ImageError::NoStaticBinary { candidate, command: STATIC_BUILD_COMMAND })
}

/// Copy image `tag` from the engine `from` to the engine at `host` (`docker save | docker load`,
/// through the API): the same image ID on both, which is what a Swarm service given the ID runs
/// on any node. `host` is a unix socket (`unix://PATH` or a bare path) or `tcp://HOST:PORT`.
/// Returns the ID there. The image is small (one static binary), so it is held in memory.
pub async fn copy_image(from: &Docker, tag: &str, host: &str) -> Result<String, ImageError> {
    let copy = |reason: String| ImageError::Copy { tag: tag.to_owned(), to: host.to_owned(), reason };
    let to = if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_socket(host.trim_start_matches("unix://"), 120, bollard::API_DEFAULT_VERSION)
    };
    let to = to.map_err(|e| copy(format!("connecting: {e}")))?;
    let to = to.negotiate_version().await.map_err(|e| copy(format!("connecting: {e}")))?;
    let mut tar = Vec::new();
    let mut export = std::pin::pin!(from.export_image(tag));
    while let Some(chunk) = export.next().await {
        tar.extend_from_slice(&chunk.map_err(|e| copy(format!("saving it: {e}")))?);
    }
    let options = bollard::query_parameters::ImportImageOptionsBuilder::new().quiet(true).build();
    let mut load = std::pin::pin!(to.import_image(options, bollard::body_full(Bytes::from(tar)), None));
    while let Some(info) = load.next().await {
        let info = info.map_err(|e| copy(format!("loading it: {e}")))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message).or(info.error) {
            return Err(copy(format!("loading it: {e}")));
        }
    }
    let inspected = to.inspect_image(tag).await.map_err(|source| ImageError::InspectImage { tag: tag.to_owned(), source })?;
    inspected.id.ok_or_else(|| copy("the loaded image has no ID".to_owned()))
}

/// Build the `FROM scratch` image holding `binary` as `/stampede`, tag it `tag` and return its
/// ID. With `filler_mb > 0`, a `/filler` file of that many MiB of incompressible bytes is added
/// (storage drivers and layer extraction then have real work to do).
pub async fn build_image(docker: &Docker, binary: &Path, tag: &str, filler_mb: u32) -> Result<String, ImageError> {
    let read_error = |source| ImageError::ReadBinary { path: binary.to_owned(), source };
    if !is_static_elf(binary).map_err(read_error)? {
        return Err(ImageError::NotStatic { path: binary.to_owned(), command: STATIC_BUILD_COMMAND });
    }
    let exe = std::fs::read(binary).map_err(read_error)?;
    let context = build_context(Some(&exe), filler_mb, dockerfile(filler_mb > 0));
    run_build(docker, context, tag).await
}

/// Build `<base>` plus a `/filler` of `filler_mb` MiB of incompressible bytes, tagged
/// `stampede-filler:<N>mb`, and return the tag. This is how a scenario's `image_filler_mb` shows
/// what image size does to start time (STeLLAR's filler), without rebuilding the binary image.
pub async fn build_filler_image(docker: &Docker, base: &str, filler_mb: u32) -> Result<String, ImageError> {
    let tag = format!("stampede-filler:{filler_mb}mb");
    let context = build_context(None, filler_mb, format!("FROM {base}\nCOPY filler /filler\n"));
    run_build(docker, context, &tag).await?;
    Ok(tag)
}

/// Send a build context to the engine, follow its progress, and return the built image's ID.
async fn run_build(
    docker: &Docker,
    context: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    tag: &str,
) -> Result<String, ImageError> {
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true) // no intermediate containers left behind, even when a step fails
        .labels(&HashMap::from([(IMAGE_LABEL, "1")]))
        .build();
    let mut progress = docker.build_image(options, None, Some(body_try_stream(context)));
    while let Some(item) = progress.next().await {
        let info = item.map_err(|e| ImageError::Build { tag: tag.to_owned(), reason: e.to_string() })?;
        if let Some(error) = info.error {
            return Err(ImageError::Build { tag: tag.to_owned(), reason: error });
        }
        if let Some(line) = info.stream.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            tracing::debug!(target: "stampede::image", "{line}");
        }
    }
    // Ask the store rather than trusting the progress stream: its `aux` ID is shaped differently
    // by the classic builder and BuildKit.
    let image =
        docker.inspect_image(tag).await.map_err(|source| ImageError::InspectImage { tag: tag.to_owned(), source })?;
    // A rebuild moves the tag and leaves the previous image untagged: remove such leftovers of
    // our own (labelled, dangling) so rebuilding never piles up images. Best effort.
    let filters = HashMap::from([("dangling", vec!["true"]), ("label", vec![IMAGE_LABEL])]);
    if let Err(e) = docker.prune_images(Some(PruneImagesOptionsBuilder::new().filters(&filters).build())).await {
        tracing::debug!("pruning replaced stampede images: {e}");
    }
    image.id.ok_or_else(|| ImageError::Build { tag: tag.to_owned(), reason: "the engine reports no image ID".into() })
}

fn dockerfile(with_filler: bool) -> String {
    let filler = if with_filler { "COPY filler /filler\n" } else { "" };
    format!("FROM scratch\nCOPY stampede /stampede\n{filler}ENTRYPOINT [\"/stampede\"]\n")
}

/// The build context as a tar stream. The filler goes first and is generated chunk by chunk, so
/// that a multi-GiB filler never sits in memory; the small entries and the end-of-archive marker
/// follow from a regular `tar::Builder`.
fn build_context(
    exe: Option<&[u8]>,
    filler_mb: u32,
    dockerfile: String,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let filler_len = filler_mb as usize * MIB;
    let mut head = Vec::new();
    if filler_len > 0 {
        head.extend_from_slice(tar_header("filler", filler_len, 0o644).as_bytes());
    }
    let mut tail = tar::Builder::new(Vec::new());
    append(&mut tail, "Dockerfile", dockerfile.as_bytes(), 0o644);
    if let Some(exe) = exe {
        append(&mut tail, "stampede", exe, 0o755);
    }
    let tail = tail.into_inner().expect("writing to a Vec cannot fail");

    // A whole number of MiB is a whole number of tar blocks: the filler data needs no padding.
    debug_assert_eq!(filler_len % TAR_BLOCK, 0);
    let chunks = filler_len / MIB;
    let filler = stream::iter(0..chunks).map(|i| Ok(Bytes::from(incompressible(i as u64, MIB))));
    stream::once(async move { Ok(Bytes::from(head)) })
        .chain(filler)
        .chain(stream::once(async move { Ok(Bytes::from(tail)) }))
}

fn tar_header(path: &str, size: usize, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_path(path).expect("short relative path");
    header.set_size(size as u64);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut header = tar_header(path, data.len(), mode);
    builder.append_data(&mut header, path, data).expect("writing to a Vec cannot fail");
}

/// `len` bytes that no compressor shrinks (xorshift64*), different for every `seed`.
fn incompressible(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_binaries_are_not_static() {
        // /bin/sh is dynamically linked on every distribution we run on.
        assert!(!is_static_elf(Path::new("/bin/sh")).unwrap());
        assert!(!is_static_elf(Path::new("/etc/passwd")).unwrap());
    }

    #[tokio::test]
    async fn context_is_a_valid_tar_with_filler() {
        let exe = b"\x7fELF-not-really".to_vec();
        let parts: Vec<Bytes> = build_context(Some(&exe), 1, dockerfile(true)).map(|b| b.unwrap()).collect().await;
        let all: Vec<u8> = parts.concat();
        assert_eq!(all.len() % TAR_BLOCK, 0);
        let mut archive = tar::Archive::new(&all[..]);
        let entries: Vec<(String, u64, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.size(), e.header().mode().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("filler".into(), MIB as u64, 0o644),
                ("Dockerfile".into(), dockerfile(true).len() as u64, 0o644),
                ("stampede".into(), exe.len() as u64, 0o755),
            ]
        );
    }
}
