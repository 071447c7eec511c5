//! Files the server re-reads while it runs (the serving pair, the client CA).

use std::path::Path;
use std::time::Duration;

use super::crypto::TlsError;

/// How often the files are checked. Rotation must reach new connections within 10 s; polling
/// every 2 s does that with room for a slow read, and costs two small file reads.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Re-reads something from disk every [`POLL_INTERVAL`] until the task is dropped: `reload`
/// says whether it changed and loaded, `loaded` and `failed` count the outcome. A failure is
/// logged and the last good version stays in use.
pub async fn poll(
    what: &'static str,
    path: &Path,
    reload: impl Fn() -> Result<bool, TlsError>,
    loaded: impl Fn(),
    failed: impl Fn(),
) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match reload() {
            Ok(true) => {
                tracing::info!(file = %path.display(), "{what} reloaded");
                loaded();
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "{what} not reloaded; keeping the last good one");
                failed();
            }
        }
    }
}
