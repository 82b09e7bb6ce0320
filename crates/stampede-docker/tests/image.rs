//! `build_image` against the real Docker Engine: the image is `FROM scratch` + `/stampede`,
//! labelled, with an optional incompressible filler.

mod common;

use stampede_docker::{build_image, ImageError};

#[tokio::test]
async fn build_image_with_filler_is_labelled_and_sized() {
    let rt = common::runtime().await;
    let binary = common::static_binary();
    let tag = format!("stampede-test-filler:{}", common::unique_run_id("img"));
    let built = build_image(rt.client(), &binary, &tag, 3).await;
    let inspected = rt.client().inspect_image(&tag).await;
    // Remove before asserting, so a failed assertion leaves no image behind.
    let removed = rt.client().remove_image(&tag, None::<bollard::query_parameters::RemoveImageOptions>, None).await;

    let id = built.expect("build_image");
    let image = inspected.expect("inspect built image");
    removed.expect("remove test image");
    assert_eq!(image.id.as_deref(), Some(id.as_str()));
    let config = image.config.expect("config");
    assert_eq!(config.entrypoint, Some(vec!["/stampede".to_owned()]));
    assert_eq!(config.labels.unwrap_or_default().get("stampede.image").map(String::as_str), Some("1"));
    let binary_len = std::fs::metadata(&binary).unwrap().len() as i64;
    let size = image.size.expect("size");
    assert!(size >= binary_len + 3 * 1024 * 1024, "image of {size} bytes lacks the 3 MiB filler");
    assert!(size < binary_len + 4 * 1024 * 1024, "image of {size} bytes holds more than the binary and the filler");
}

#[tokio::test]
async fn build_image_refuses_a_dynamic_binary() {
    let rt = common::runtime().await;
    match build_image(rt.client(), std::path::Path::new("/bin/sh"), "stampede-test-never:latest", 0).await {
        Err(ImageError::NotStatic { command, .. }) => assert!(command.contains("crt-static")),
        other => panic!("expected NotStatic, got {other:?}"),
    }
}
