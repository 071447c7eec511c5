//! SPIFFE ID rules, with go-spiffe's messages (what upstream Kuma reports when it issues a
//! certificate) so users see the same words at admission.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SpiffeError {
    #[error("trust domain is missing")]
    MissingTrustDomain,
    #[error("trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores")]
    BadTrustDomainChar,
    #[error("path must have a leading slash")]
    NoLeadingSlash,
    #[error("path cannot contain empty segments")]
    EmptySegment,
    #[error("path cannot contain dot segments")]
    DotSegment,
    #[error("path cannot have a trailing slash")]
    TrailingSlash,
    #[error(
        "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
    )]
    BadPathSegmentChar,
}

pub fn is_trust_domain_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_')
}

pub fn is_path_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

pub fn validate_trust_domain(trust_domain: &str) -> Result<(), SpiffeError> {
    if trust_domain.is_empty() {
        return Err(SpiffeError::MissingTrustDomain);
    }
    if trust_domain.chars().all(is_trust_domain_char) {
        Ok(())
    } else {
        Err(SpiffeError::BadTrustDomainChar)
    }
}

/// Checks a SPIFFE ID path in go-spiffe's order: leading slash, then segment by segment (empty or
/// dot segments are reported when the segment ends, bad characters as soon as they are seen).
pub fn validate_path(path: &str) -> Result<(), SpiffeError> {
    if path.is_empty() {
        return Ok(());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(SpiffeError::NoLeadingSlash);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        if let Some(_bad) = segment.chars().find(|c| !is_path_segment_char(*c)) {
            return Err(SpiffeError::BadPathSegmentChar);
        }
        match *segment {
            "" if index == last => return Err(SpiffeError::TrailingSlash),
            "" => return Err(SpiffeError::EmptySegment),
            "." | ".." => return Err(SpiffeError::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

/// `spiffe://<trust domain><path>` after both parts pass.
pub fn spiffe_id(trust_domain: &str, path: &str) -> Result<String, SpiffeError> {
    validate_trust_domain(trust_domain)?;
    validate_path(path)?;
    Ok(format!("spiffe://{trust_domain}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use SpiffeError::*;

    #[test]
    fn trust_domains() {
        let cases = [
            ("default.zone.mesh.local", Ok(())),
            ("a_b-c.9", Ok(())),
            ("", Err(MissingTrustDomain)),
            ("Prod.Example", Err(BadTrustDomainChar)),
            ("a/b", Err(BadTrustDomainChar)),
            ("a:8080", Err(BadTrustDomainChar)),
        ];
        for (input, want) in cases {
            assert_eq!(validate_trust_domain(input), want, "{input:?}");
        }
    }

    #[test]
    fn paths() {
        let cases = [
            ("", Ok(())),
            ("/ns/default/sa/web", Ok(())),
            ("/A.b-c_d", Ok(())),
            ("ns/x", Err(NoLeadingSlash)),
            ("/", Err(TrailingSlash)),
            ("/ns/", Err(TrailingSlash)),
            ("//x", Err(EmptySegment)),
            ("/ns//sa", Err(EmptySegment)),
            ("/./x", Err(DotSegment)),
            ("/x/..", Err(DotSegment)),
            ("/x/...", Ok(())),
            ("/x y", Err(BadPathSegmentChar)),
            ("/x:y/", Err(BadPathSegmentChar)),
            ("/é", Err(BadPathSegmentChar)),
        ];
        for (input, want) in cases {
            assert_eq!(validate_path(input), want, "{input:?}");
        }
    }

    #[test]
    fn ids() {
        assert_eq!(spiffe_id("td", "/ns/a").as_deref(), Ok("spiffe://td/ns/a"));
        assert_eq!(spiffe_id("", "/a"), Err(MissingTrustDomain));
    }
}
