//! The template parser and executor on any source: no panic, no allocation past the fuzzer's
//! malloc limit (the renderer's budget is 16 KiB), and the limits it promises hold.
#![no_main]

use std::collections::BTreeMap;

use kuma_identity_webhook::gotemplate::{self, Data, MAX_RENDER_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|source: &str| {
    let Ok(template) = gotemplate::parse(source, &["label"]) else {
        return;
    };
    let labels = BTreeMap::from([
        ("app".to_owned(), "web".to_owned()),
        ("kuma.io/workload".to_owned(), "shop-web".to_owned()),
    ]);
    for fields in [
        &[("Mesh", "default"), ("Zone", "east")][..],
        &[
            ("TrustDomain", "default.east.mesh.local"),
            ("Namespace", "shop"),
            ("ServiceAccount", "web"),
            ("Workload", "shop-web"),
        ][..],
    ] {
        if let Ok(output) = template.execute(&Data {
            fields,
            labels: &labels,
        }) {
            assert!(output.len() <= MAX_RENDER_BYTES);
        }
    }
    // The static questions admission asks never panic either.
    let _ = template.root_fields();
    let _ = template.label_keys();
    let _ = template.literal_texts();
});
