//! Which MeshIdentity applies to a dataplane.
//!
//! Among the identities of the dataplane's mesh that select dataplanes and whose `matchLabels` all
//! match, the one with the most `matchLabels` wins; ties go to the smallest `<name>.<namespace>`.
//! Ranking the identities once and taking the first match makes that a cheap scan per pod.

use crate::api::{Labels, MeshIdentity};
use crate::identity::dataplane::DataplaneView;

/// A mesh's identities in precedence order.
pub struct Ranking<'a> {
    ordered: Vec<Ranked<'a>>,
}

#[derive(Clone, Copy)]
pub struct Ranked<'a> {
    pub identity: &'a MeshIdentity,
    pub match_labels: &'a Labels,
}

impl Ranked<'_> {
    /// How specific the selector is: the number of `matchLabels`.
    pub fn score(&self) -> usize {
        self.match_labels.len()
    }
}

impl<'a> Ranking<'a> {
    /// Ranks `identities`, all of one mesh. Identities that select no dataplanes are left out.
    pub fn new(identities: impl IntoIterator<Item = &'a MeshIdentity>) -> Self {
        let mut ordered: Vec<Ranked<'a>> = identities
            .into_iter()
            .filter_map(|identity| {
                let match_labels = identity.dataplane_match_labels()?;
                Some(Ranked {
                    identity,
                    match_labels,
                })
            })
            .collect();
        ordered.sort_by(|a, b| {
            b.score()
                .cmp(&a.score())
                .then_with(|| a.identity.precedence_cmp(b.identity))
        });
        Self { ordered }
    }

    /// The winner for `dataplane`, if any identity selects it. There is no fallback to a
    /// runner-up: the winner counts even when it cannot render.
    pub fn winner(&self, dataplane: &DataplaneView) -> Option<&'a MeshIdentity> {
        self.matching(dataplane).next().map(|r| r.identity)
    }

    /// Every identity that selects `dataplane`, winner first.
    pub fn matching<'s>(
        &'s self,
        dataplane: &'s DataplaneView,
    ) -> impl Iterator<Item = Ranked<'a>> + 's {
        self.ordered
            .iter()
            .filter(move |r| dataplane.matches(r.match_labels))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::PodInfo;
    use crate::cluster::Snapshot;
    use crate::config::Settings;

    fn identity(name: &str, selector: serde_json::Value) -> MeshIdentity {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "kuma-system"},
            "spec": {"selector": selector}
        }))
        .unwrap()
    }

    fn winner(identities: &[MeshIdentity], labels: serde_json::Value) -> Option<String> {
        let pod = PodInfo::from_json(
            &json!({"metadata": {"name": "p", "namespace": "shop", "labels": labels}}),
            None,
        );
        let (view, settings) = (Snapshot::default(), Settings::default());
        let dataplane = DataplaneView::new(&pod, &view, &settings);
        Ranking::new(identities)
            .winner(&dataplane)
            .map(|w| w.name().to_owned())
    }

    #[test]
    fn precedence_compares_as_the_name_dot_namespace_keys_do() {
        let of = |name: &str, namespace: &str| -> MeshIdentity {
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": namespace}}))
                .unwrap()
        };
        let identities = [
            of("a", "kuma-system"),
            of("a-b", "kuma-system"),
            of("a", "b.c"),
            of("a.b", "c"),
            of("ab", "c"),
            of("a", "kuma"),
            of("", "x"),
        ];
        for a in &identities {
            for b in &identities {
                assert_eq!(
                    a.precedence_cmp(b),
                    a.precedence_key().cmp(&b.precedence_key()),
                    "{} vs {}",
                    a.precedence_key(),
                    b.precedence_key()
                );
            }
        }
    }

    #[test]
    fn the_most_specific_selector_wins_and_ties_go_to_the_smaller_name() {
        let all = || json!({"dataplane": {"matchLabels": {}}});
        let web = || json!({"dataplane": {"matchLabels": {"app": "web"}}});
        let web_prod = || json!({"dataplane": {"matchLabels": {"app": "web", "env": "prod"}}});
        let cases: Vec<(Vec<MeshIdentity>, serde_json::Value, Option<&str>)> = vec![
            (
                vec![identity("b", all()), identity("a", all())],
                json!({}),
                Some("a"),
            ),
            (
                vec![identity("z", web()), identity("a", all())],
                json!({"app": "web"}),
                Some("z"),
            ),
            (
                vec![identity("z", web_prod()), identity("a", web())],
                json!({"app": "web", "env": "prod"}),
                Some("z"),
            ),
            (
                vec![identity("z", web_prod()), identity("a", web())],
                json!({"app": "web"}),
                Some("a"),
            ),
            // `-` sorts before `.`: "a-b.kuma-system" < "a.kuma-system".
            (
                vec![identity("a", web()), identity("a-b", web())],
                json!({"app": "web"}),
                Some("a-b"),
            ),
            // A selector without dataplanes selects nothing.
            (vec![identity("a", json!({}))], json!({}), None),
            (vec![identity("a", web())], json!({"app": "db"}), None),
            // Derived labels match too.
            (
                vec![identity(
                    "a",
                    json!({"dataplane": {"matchLabels": {"k8s.kuma.io/namespace": "shop"}}}),
                )],
                json!({}),
                Some("a"),
            ),
        ];
        for (identities, labels, want) in cases {
            assert_eq!(
                winner(&identities, labels.clone()).as_deref(),
                want,
                "{labels}"
            );
        }
    }
}
