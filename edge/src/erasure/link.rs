//! A client's sign-in link as the registry keeps it (README, "Identity"):
//! the user it follows, what its moves gave so far, and the move under way.
//! What a move holds is `core::link`'s to decide.

use std::collections::BTreeMap;

use freshet_core::link::Link;
use freshet_core::state::FeatureState;
use freshet_core::time::Millis;
use serde::{Deserialize, Serialize};

/// One client entity's features as the moves so far gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Given {
    pub entity: String,
    /// The client's side of the id.
    pub id: String,
    pub features: BTreeMap<String, FeatureState>,
}

/// A move recorded before it is applied, so a runner that dies half-way
/// leaves it for the next to finish, the same move under the same marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingMove {
    pub link: Link,
    /// What the moves will have given once it is applied.
    pub given: Vec<Given>,
}

/// A client's link, in its principal's registry object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkState {
    /// The user the client follows: the last one it first signed in as.
    pub user: String,
    /// When it started following that user.
    pub since: Millis,
    /// The moves applied.
    pub seq: u64,
    pub given: Vec<Given>,
    pub pending: Option<PendingMove>,
    /// Whether the user's registry object knows the link is made (after
    /// the first move): until then each batch of the user from this client
    /// links it again, so a sign-in whose batch failed moves on its retry.
    #[serde(default)]
    pub confirmed: bool,
    /// Bumped by each save; a save names the version it read.
    pub version: u64,
}

impl LinkState {
    pub fn new(user: &str, since: Millis) -> Self {
        Self {
            user: user.to_owned(),
            since,
            seq: 0,
            given: Vec::new(),
            pending: None,
            confirmed: false,
            version: 1,
        }
    }

    /// `given` by (entity, client-side id), as `core::link::moves` takes it.
    pub fn given_map(&self) -> BTreeMap<(String, String), BTreeMap<String, FeatureState>> {
        self.given
            .iter()
            .map(|g| ((g.entity.clone(), g.id.clone()), g.features.clone()))
            .collect()
    }

    /// Follows `user` from `at` (a client signed in as another user keeps
    /// what it gave the first).
    pub fn follow(&mut self, user: &str, at: Millis) {
        if self.user != user {
            user.clone_into(&mut self.user);
            self.since = at;
            self.confirmed = false;
            self.version += 1;
        }
    }
}
