//! A snapshot of the environment variables the tool reads, so that pure code can take them as a
//! value and tests can set them without touching the process environment.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    pub fn from_process() -> Env {
        // Variables that are not UTF-8 cannot be any the tool reads; leave them out.
        Env(std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect())
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// The value of `name`, treating an empty value as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A whole number from `name`, or `default` when it is unset; anything else is an error
    /// that names the variable, so a typo never silently falls back to the default.
    pub fn number(&self, name: &str, default: u64) -> anyhow::Result<u64> {
        self.number_in(name, default, 0..=u64::MAX)
    }

    /// Like `number`, within `range` (a value outside it is an error that gives the range).
    pub fn number_in(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> anyhow::Result<u64> {
        let Some(value) = self.get(name) else { return Ok(default) };
        // Parsed wide, so that a number too large for the range is said to be out of it.
        let wide: u128 = value.trim().parse().map_err(|_| {
            anyhow::anyhow!("{name}=`{value}` is not a whole number: set it to one (the default is {default}) or unset it")
        })?;
        let number = u64::try_from(wide).unwrap_or(u64::MAX);
        if !range.contains(&number) || u128::from(number) != wide {
            anyhow::bail!(
                "{name}=`{value}` is out of range: give {} to {} (the default is {default}) or unset it",
                range.start(),
                range.end()
            );
        }
        Ok(number)
    }

    pub fn in_github_actions(&self) -> bool {
        self.get("GITHUB_ACTIONS") == Some("true")
    }
}
