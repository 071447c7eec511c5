use super::*;

#[test]
fn finding_names_are_the_json_values_and_distinct() {
    let mut names: Vec<&str> = Finding::ALL.iter().map(|f| f.as_str()).collect();
    for finding in Finding::ALL {
        let json = serde_json::to_value(finding).unwrap();
        assert_eq!(json, finding.as_str());
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Finding::ALL.len());
}

#[test]
fn the_missing_label_is_named_from_the_render_error() {
    use crate::gotemplate::ExecError;
    use crate::identity::render::SpiffeIdError;
    let go = r#"template: :1:8: executing "" at <label "team">: error calling label: label team not found"#;
    assert_eq!(
        SpiffeIdError::Path(ExecError(go.to_owned())).missing_label(),
        Some("team")
    );
    let other =
        r#"template: :1:8: executing "" at <len .X>: error calling len: len of type string"#;
    assert_eq!(
        SpiffeIdError::Path(ExecError(other.to_owned())).missing_label(),
        None
    );
    let invalid = SpiffeIdError::Invalid {
        value: "spiffe://x/label team not found".to_owned(),
        problem: "p".to_owned(),
    };
    assert_eq!(invalid.missing_label(), None);
}
