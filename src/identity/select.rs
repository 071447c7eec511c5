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
        let mut ordered: Vec<(String, Ranked<'a>)> = identities
            .into_iter()
            .filter_map(|identity| {
                let match_labels = identity.dataplane_match_labels()?;
                Some((
                    identity.precedence_key(),
                    Ranked {
                        identity,
                        match_labels,
                    },
                ))
            })
            .collect();
        ordered.sort_by(|(key_a, a), (key_b, b)| {
            b.score().cmp(&a.score()).then_with(|| key_a.cmp(key_b))
        });
        Self {
            ordered: ordered.into_iter().map(|(_, ranked)| ranked).collect(),
        }
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
