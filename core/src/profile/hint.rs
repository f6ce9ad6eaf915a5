//! "Did you mean …?" for a misspelt field. serde names an unknown field and
//! lists every valid one ("unknown field `tenantid`, expected one of
//! `provider`, `base_url`, …"); a person wants the one they meant, not 30
//! names.

/// The unknown field in a serde message, and the nearest valid name when
/// one is close enough to be what was meant.
pub(crate) fn unknown_field(message: &str) -> Option<(String, Option<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    Some((field.to_owned(), nearest(field, &expected).map(str::to_owned)))
}

/// The valid name nearest to `field`, if it is within a third of its length
/// in edits (at least one, at most three): `tenantid` → `tenant_id`,
/// `base-url` → `base_url`; `bogus` → none.
fn nearest<'a>(field: &str, valid: &[&'a str]) -> Option<&'a str> {
    let lower = field.to_ascii_lowercase();
    let limit = (field.chars().count() / 3).clamp(1, 3);
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(&lower, v), *v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERDE: &str = "unknown field `tenantid`, expected one of `provider`, `base_url`, `tenant_id`, `pins`";

    #[test]
    fn a_misspelt_field_gets_the_one_meant() {
        assert_eq!(
            unknown_field(SERDE),
            Some(("tenantid".into(), Some("tenant_id".into())))
        );
        let dashed = SERDE.replace("tenantid", "base-url");
        assert_eq!(unknown_field(&dashed).unwrap().1.as_deref(), Some("base_url"));
        let upper = SERDE.replace("tenantid", "Tenant_ID");
        assert_eq!(unknown_field(&upper).unwrap().1.as_deref(), Some("tenant_id"));
    }

    #[test]
    fn a_field_like_none_gets_no_guess_and_other_messages_are_not_read() {
        assert_eq!(
            unknown_field(&SERDE.replace("tenantid", "bogus")),
            Some(("bogus".into(), None))
        );
        assert_eq!(unknown_field("invalid type: integer `1`, expected a string"), None);
        assert_eq!(unknown_field("unknown field `x`"), Some(("x".into(), None)));
    }
}
