//! The agents a client can address, with the aliases older clients use.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the six agents of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    Supervisor,
    Triage,
    Data,
    Optimization,
    Actions,
    Reporting,
}

impl AgentKind {
    /// All agents in the order `connection_established` lists them.
    pub const ALL: [AgentKind; 6] = [
        Self::Supervisor,
        Self::Triage,
        Self::Data,
        Self::Optimization,
        Self::Actions,
        Self::Reporting,
    ];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Supervisor => "supervisor",
            Self::Triage => "triage",
            Self::Data => "data",
            Self::Optimization => "optimization",
            Self::Actions => "actions",
            Self::Reporting => "reporting",
        }
    }

    /// Other names that address the same agent (Netra-era clients use these).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::Supervisor => &["supervisor_agent"],
            Self::Triage => &["triage_agent"],
            Self::Data => &["unified_data_agent", "data_agent"],
            Self::Optimization => &["optimization_agent"],
            Self::Actions => &["actions_agent"],
            Self::Reporting => &["reporting_agent"],
        }
    }

    /// Resolves a canonical name or an alias, ignoring ASCII case and surrounding space.
    pub fn from_name(name: &str) -> Option<AgentKind> {
        let name = name.trim();
        Self::ALL.into_iter().find(|kind| {
            kind.as_str().eq_ignore_ascii_case(name)
                || kind.aliases().iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }
}

impl fmt::Display for AgentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_aliases() {
        assert_eq!(
            AgentKind::from_name("unified_data_agent"),
            Some(AgentKind::Data)
        );
        assert_eq!(AgentKind::from_name("data_agent"), Some(AgentKind::Data));
        assert_eq!(
            AgentKind::from_name("Supervisor_Agent"),
            Some(AgentKind::Supervisor)
        );
        assert_eq!(
            AgentKind::from_name(" optimization "),
            Some(AgentKind::Optimization)
        );
        assert_eq!(AgentKind::from_name("nonexistent_agent"), None);
        for kind in AgentKind::ALL {
            assert_eq!(AgentKind::from_name(kind.as_str()), Some(kind));
        }
    }
}
