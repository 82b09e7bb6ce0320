//! The seam between tiers and platforms: each runtime crate offers a [`RuntimeProvider`], and
//! the binary lists them in a [`Registry`]. Nothing else knows which runtimes exist.
//!
//! A provider is also the scenario parser's view of the runtime ([`RuntimeInfo`]: name,
//! capabilities, option table), so parsing and connecting can never disagree about a name.

use async_trait::async_trait;
use std::sync::Arc;

use stampede_core::scenario::{RuntimeCatalog, RuntimeInfo};

use crate::{Runtime, RuntimeError};

#[async_trait]
pub trait RuntimeProvider: RuntimeInfo {
    /// A client for launching instances with `options` (as this provider's `read_options`
    /// returned them).
    async fn connect(&self, options: &serde_json::Value) -> Result<Arc<dyn Runtime>, RuntimeError>;

    /// Remove leftovers of one run (`Some(id)`) or of every run, for `stampede clean`;
    /// `Ok(None)` when the platform is not there to clean (nothing could be left on it).
    async fn clean(&self, run_id: Option<&str>) -> Result<Option<usize>, RuntimeError>;
}

/// The runtimes one binary offers, in the order `--help` lists them.
#[derive(Clone, Default)]
pub struct Registry {
    providers: Vec<Arc<dyn RuntimeProvider>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.iter().map(|p| p.name())).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a runtime; a later one with the same name replaces the earlier.
    pub fn with(mut self, provider: impl RuntimeProvider + 'static) -> Self {
        self.providers.retain(|p| p.name() != provider.name());
        self.providers.push(Arc::new(provider));
        self
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<dyn RuntimeProvider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    pub fn providers(&self) -> &[Arc<dyn RuntimeProvider>] {
        &self.providers
    }

    /// Connect runtime `name` with its validated `options`.
    pub async fn connect(&self, name: &str, options: &serde_json::Value) -> Result<Arc<dyn Runtime>, RuntimeError> {
        let provider = self.provider(name).ok_or_else(|| RuntimeError::Unavailable {
            runtime: name.to_owned(),
            source: format!("this binary has no runtime named `{name}` (it has: {})", self.names().join(", ")).into(),
        })?;
        provider.connect(options).await
    }
}

impl RuntimeCatalog for Registry {
    fn find(&self, name: &str) -> Option<&dyn RuntimeInfo> {
        self.provider(name).map(|p| p.as_ref() as &dyn RuntimeInfo)
    }

    fn names(&self) -> Vec<&'static str> {
        self.providers.iter().map(|p| p.name()).collect()
    }
}
