//! Which MeshIdentity applies to a dataplane.
//!
//! Among the identities of the dataplane's mesh that select dataplanes and whose `matchLabels` all
//! match, the one with the most `matchLabels` wins; ties go to the smallest `<name>.<namespace>`.
//! Ranking the identities once and taking the first match makes that a cheap scan per pod.

use std::cmp::Ordering;

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

impl<'a> Ranked<'a> {
    /// `identity` with its selector, when it selects dataplanes at all.
    fn of(identity: &'a MeshIdentity) -> Option<Self> {
        Some(Self {
            identity,
            match_labels: identity.dataplane_match_labels()?,
        })
    }

    /// How specific the selector is: the number of `matchLabels`.
    pub fn score(&self) -> usize {
        self.match_labels.len()
    }

    /// Which of two comes first: the higher score, then the smaller `<name>.<namespace>`.
    fn precedence(&self, other: &Self) -> Ordering {
        other
            .score()
            .cmp(&self.score())
            .then_with(|| self.identity.precedence_cmp(other.identity))
    }
}

impl<'a> Ranking<'a> {
    /// Ranks `identities`, all of one mesh. Identities that select no dataplanes are left out.
    pub fn new(identities: impl IntoIterator<Item = &'a MeshIdentity>) -> Self {
        let mut ordered: Vec<Ranked<'a>> = identities.into_iter().filter_map(Ranked::of).collect();
        // Stable: of two with equal precedence, the one met first comes first.
        ordered.sort_by(Ranked::precedence);
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

/// Whether one identity wins a dataplane, without ranking its whole mesh: it wins the dataplanes
/// it selects that no identity ranked ahead of it selects. Finding those ahead takes one
/// comparison per identity rather than a sort, which is all a review of one identity needs.
pub struct Contest<'a> {
    /// `None` when the contender selects no dataplanes, and so wins none.
    contender: Option<Ranked<'a>>,
    ahead: Vec<Ranked<'a>>,
}

impl<'a> Contest<'a> {
    /// `contender` against the `others` of its mesh (itself not among them), placed as a
    /// [`Ranking`] of the others followed by it would place it: behind any of equal precedence.
    pub fn new(
        contender: &'a MeshIdentity,
        others: impl IntoIterator<Item = &'a MeshIdentity>,
    ) -> Self {
        let contender = Ranked::of(contender);
        let ahead = match &contender {
            Some(contender) => others
                .into_iter()
                .filter_map(Ranked::of)
                .filter(|other| other.precedence(contender) != Ordering::Greater)
                .collect(),
            None => Vec::new(),
        };
        Self { contender, ahead }
    }

    /// Whether the contender is the winner for `dataplane`, as [`Ranking::winner`] would find.
    pub fn wins(&self, dataplane: &DataplaneView) -> bool {
        self.contender
            .is_some_and(|contender| dataplane.matches(contender.match_labels))
            && !self
                .ahead
                .iter()
                .any(|other| dataplane.matches(other.match_labels))
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

    /// A contest finds what a ranking of the others followed by the contender finds, with ties
    /// of precedence (`a.b` in `c` and `a` in `b.c`) and identities that select nothing.
    #[test]
    fn a_contest_agrees_with_the_ranking() {
        let of = |name: &str, namespace: &str, selector: serde_json::Value| -> MeshIdentity {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"selector": selector}
            }))
            .unwrap()
        };
        let all = json!({"dataplane": {}});
        let web = json!({"dataplane": {"matchLabels": {"app": "web"}}});
        let web_prod = json!({"dataplane": {"matchLabels": {"app": "web", "env": "prod"}}});
        let identities = [
            of("a", "kuma-system", all.clone()),
            of("z", "kuma-system", all),
            of("b", "kuma-system", web.clone()),
            of("a.b", "c", web.clone()),
            of("a", "b.c", web),
            of("y", "kuma-system", web_prod),
            of("n", "kuma-system", json!({})),
        ];
        let (view, settings) = (Snapshot::default(), Settings::default());
        for labels in [
            json!({}),
            json!({"app": "web"}),
            json!({"app": "web", "env": "prod"}),
        ] {
            let pod = PodInfo::from_json(
                &json!({"metadata": {"name": "p", "namespace": "shop", "labels": labels}}),
                None,
            );
            let dataplane = DataplaneView::new(&pod, &view, &settings);
            for (index, contender) in identities.iter().enumerate() {
                let others = || {
                    identities
                        .iter()
                        .enumerate()
                        .filter(move |(other, _)| *other != index)
                        .map(|(_, identity)| identity)
                };
                let ranked = Ranking::new(others().chain([contender]))
                    .winner(&dataplane)
                    .is_some_and(|winner| std::ptr::eq(winner, contender));
                let contest = Contest::new(contender, others());
                assert_eq!(
                    contest.wins(&dataplane),
                    ranked,
                    "{} for {labels}",
                    contender.precedence_key()
                );
            }
        }
    }
}
