//! Every manifest in `k8s/` parses into the typed k8s-openapi object of its kind, so a typo in
//! a field name or a value of the wrong type is caught without a cluster.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;

fn typed<T: for<'de> Deserialize<'de>>(doc: serde_yaml_ng::Value, file: &str) {
    // Through JSON, k8s-openapi's own deserialisers, which refuse unknown shapes of known fields.
    let json = serde_json::to_value(&doc).expect("yaml as json");
    if let Err(e) = serde_json::from_value::<T>(json) {
        panic!("{file}: {e}");
    }
}

#[test]
fn every_manifest_is_a_valid_typed_object() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("k8s/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let doc = serde_yaml_ng::Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
            let kind = doc["kind"].as_str().unwrap_or_else(|| panic!("{file}: a document without kind")).to_owned();
            match kind.as_str() {
                "Namespace" => typed::<Namespace>(doc, &file),
                "ServiceAccount" => typed::<ServiceAccount>(doc, &file),
                "ClusterRole" => typed::<ClusterRole>(doc, &file),
                "ClusterRoleBinding" => typed::<ClusterRoleBinding>(doc, &file),
                "PersistentVolumeClaim" => typed::<PersistentVolumeClaim>(doc, &file),
                "Job" => typed::<Job>(doc, &file),
                other => panic!("{file}: kind {other} has no typed check here; add it"),
            }
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(kinds, ["ClusterRole", "ClusterRoleBinding", "Job", "Namespace", "PersistentVolumeClaim", "ServiceAccount"]);
}
