//! `corridor demo --scenario FILE`: a network described in a TOML file (banks,
//! currencies, balances, caps, a payment workload, faults) run from start to end and
//! reconciled, so that a teacher can prepare a lesson. Shipped scenarios are in
//! `scenarios/`.

use std::path::Path;

/// A described network and what happens to it.
#[derive(Clone, Debug)]
pub struct Scenario {}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(_path: &Path) -> Result<Self, String> {
        Err("scenarios are not built yet".into())
    }
}

/// What a scenario run did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScenarioSummary {}

impl ScenarioSummary {
    /// True when it ended as a lesson should: every payment final and no reconciliation break.
    pub fn ok(&self) -> bool {
        false
    }

    /// The summary as text for a person.
    pub fn render(&self) -> String {
        String::new()
    }
}

/// Runs `scenario`, telling each step to `progress`.
pub async fn run_scenario(
    _scenario: &Scenario,
    _progress: &mut dyn FnMut(&str),
) -> Result<ScenarioSummary, String> {
    Err("scenarios are not built yet".into())
}
