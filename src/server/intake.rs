//! What an admission request must bring before its body is read: a JSON content type, and how
//! long its caller waits (`?timeout=`), which bounds how long it may wait for memory.

use std::time::Duration;

use axum::http::{header, HeaderMap, Uri};

use crate::validate::duration::parse_duration;

/// kube-apiserver's default webhook timeout, for a request that names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// kube-apiserver gives a webhook call at most 30 s.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// A request refused for lack of memory is answered this long before its caller gives up (at
/// most a fifth of its timeout), so the refusal arrives as an answer rather than a timeout.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(1);

/// `Ok` for `application/json`, with `charset=utf-8` or none; otherwise the reason to refuse.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err("Content-Type is missing; send application/json".to_owned());
    };
    let text = value.to_str().unwrap_or_default();
    let mut parts = text.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(format!(
            "Content-Type {text:?} is not supported; send application/json"
        ));
    }
    for parameter in parts {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8") {
            return Err(format!(
                "charset {value:?} is not supported; AdmissionReviews are UTF-8 JSON"
            ));
        }
    }
    Ok(())
}

/// How long the caller waits for the answer: `?timeout=` (a Go duration, as kube-apiserver
/// sends it), else the API server's default, at most its maximum.
pub fn caller_timeout(uri: &Uri) -> Duration {
    let given = uri.query().unwrap_or_default().split('&').find_map(|pair| {
        let value = pair.strip_prefix("timeout=")?;
        let nanos = parse_duration(value).ok()?;
        u64::try_from(nanos).ok().map(Duration::from_nanos)
    });
    given.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT)
}

/// How long a request may wait for memory: until its answer is still in time.
pub fn wait_limit(timeout: Duration) -> Duration {
    timeout.saturating_sub(ANSWER_MARGIN.min(timeout / 5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_utf8_json_is_accepted() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; foo=bar",
        ] {
            assert!(check_content_type(&with_type(ok)).is_ok(), "{ok}");
        }
        for refused in [
            "text/plain",
            "application/json; charset=utf-16",
            "application/yaml",
            "application/jsonx",
        ] {
            assert!(
                check_content_type(&with_type(refused)).is_err(),
                "{refused}"
            );
        }
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }

    #[test]
    fn the_callers_timeout_comes_from_the_query() {
        let timeout = |uri: &str| caller_timeout(&uri.parse().unwrap());
        assert_eq!(timeout("/x?timeout=5s"), Duration::from_secs(5));
        assert_eq!(
            timeout("/x?a=b&timeout=1500ms"),
            Duration::from_millis(1500)
        );
        assert_eq!(timeout("/x"), DEFAULT_TIMEOUT);
        assert_eq!(timeout("/x?timeout=junk"), DEFAULT_TIMEOUT);
        assert_eq!(timeout("/x?timeout=-5s"), DEFAULT_TIMEOUT);
        assert_eq!(timeout("/x?timeout=1h"), MAX_TIMEOUT);
        assert_eq!(wait_limit(Duration::from_secs(10)), Duration::from_secs(9));
        assert_eq!(
            wait_limit(Duration::from_secs(2)),
            Duration::from_millis(1600)
        );
    }
}
