//! What one execution, and a series of them, may spend: the limits Go does not have, which keep
//! hostile templates from costing admission more than a sliver of time and memory.

/// Evaluations allowed per execution: far beyond any SPIFFE ID template (the defaults take about
/// a dozen), small enough that a `{{range 1000000000}}` stops within a millisecond or so.
pub const MAX_STEPS: usize = 10_000;
/// A SPIFFE ID is at most 2 048 bytes; eight times that covers any template's output and the
/// values it builds on the way, while a runaway template stops long before it costs memory.
pub const MAX_RENDER_BYTES: usize = 16 * 1024;
/// Comparing this many bytes of variable or template names (or scanning this many variables)
/// costs one step, so names megabytes long cannot make each step expensive.
pub const BYTES_PER_STEP: usize = 64;
/// Template calls may nest this deep (Go allows 100 000, far more than a server thread's stack
/// holds; each call costs several recursive frames).
pub const MAX_DEPTH: usize = 100;
/// Lists and pipelines may nest this deep in one execution, template calls included: enough
/// for any template the parser accepts on its own, bounded when calls stack them up.
pub const MAX_NESTING: usize = 400;

/// Evaluation steps a caller allows a series of executions (one admission review may render a
/// path for thousands of pods); each execution also stops at [`MAX_STEPS`] on its own.
#[derive(Debug, Clone)]
pub struct Budget {
    pub(super) steps: usize,
}

impl Budget {
    pub fn new(steps: usize) -> Self {
        Self { steps }
    }

    /// Steps left for further executions.
    pub fn remaining(&self) -> usize {
        self.steps
    }
}

/// The message for a render that outgrew [`MAX_RENDER_BYTES`].
pub fn over_budget_message() -> String {
    format!("rendering needs more than {MAX_RENDER_BYTES} bytes (output and values together)")
}
