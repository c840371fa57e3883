//! The builtin steps and their settings, typed and checked when the job is
//! loaded (as Vector decodes each component's config), so `c360 validate` rejects
//! `clv_time_unit: fortnights` at its `file:line:col` instead of a run failing
//! after every source was staged.
//!
//! Settings live in the job's `params:` (SQL files read some of the same values,
//! and `--set` overrides them). [`Builtin::settings`] is the one decoder: the
//! loader calls it on the file's params to report mistakes, the run calls it again
//! on the params after `--set`, before it reads any source.

use std::collections::BTreeMap;

/// A builtin Rust step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// Connected components of the identity graph, stable customer keys.
    StitchIdentities,
    /// BG/NBD + Gamma-Gamma fit and CLV per customer.
    FitClv,
}

/// The settings of one builtin step.
#[derive(Debug, Clone)]
pub enum BuiltinSettings {
    StitchIdentities(StitchSettings),
    FitClv(ClvSettings),
}

/// `stitch_identities` (docs/rules.md, "Unified customer view").
#[derive(Debug, Clone)]
pub struct StitchSettings {
    /// An email or phone on more distinct source records than this links nothing.
    pub max_records_per_identifier: u32,
    /// Whether a shared phone joins records into one customer.
    pub link_by_phone: bool,
    /// Normalised emails and phones this matches link nothing.
    pub exclude_identifiers: Option<regex::Regex>,
}

impl Default for StitchSettings {
    /// 50 source records, phones link, nothing excluded.
    fn default() -> Self {
        Self {
            max_records_per_identifier: 50,
            link_by_phone: true,
            exclude_identifiers: None,
        }
    }
}

/// The unit of the CLV summary's recency and age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClvTimeUnit {
    Days,
    Weeks,
}

/// `fit_clv` (docs/rules.md, "CLV models").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvSettings {
    pub time_unit: ClvTimeUnit,
    /// Months of future purchases counted.
    pub horizon_months: u32,
    /// Yearly discount rate, > -1 (0.10 = 10 %).
    pub annual_discount_rate: f64,
}

impl Default for ClvSettings {
    /// Weeks, 12 months, 10 % a year.
    fn default() -> Self {
        Self {
            time_unit: ClvTimeUnit::Weeks,
            horizon_months: 12,
            annual_discount_rate: 0.10,
        }
    }
}

/// A setting with a value the builtin cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("param {param}: {message}")]
pub struct SettingError {
    /// The `params:` key.
    pub param: &'static str,
    pub message: String,
}

impl Builtin {
    /// The name used in job files (`builtin: stitch_identities`).
    pub fn name(self) -> &'static str {
        match self {
            Self::StitchIdentities => "stitch_identities",
            Self::FitClv => "fit_clv",
        }
    }

    /// Tables the builtin registers besides the step's own: `stitch_identities`
    /// also registers `<step>_merges` (the key merges of the run), `fit_clv`
    /// `<step>_model` (the one-row fit summary).
    pub fn companion_tables(self, step: &str) -> Vec<String> {
        match self {
            Self::StitchIdentities => vec![format!("{step}_merges")],
            Self::FitClv => vec![format!("{step}_model")],
        }
    }

    /// The params [`Builtin::settings`] reads.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Self::StitchIdentities => &[
                "max_records_per_identifier",
                "link_by_phone",
                "exclude_identifiers",
            ],
            Self::FitClv => &[
                "clv_time_unit",
                "clv_horizon_months",
                "annual_discount_rate",
            ],
        }
    }

    /// Decodes and checks this builtin's settings from the job's params.
    pub fn settings(
        self,
        params: &BTreeMap<String, String>,
    ) -> Result<BuiltinSettings, SettingError> {
        let get = |name: &str| params.get(name).map(|v| v.trim());
        let whole = |param: &'static str, default: u32| match get(param) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| SettingError {
                param,
                message: format!("`{text}` is not a whole number >= 0"),
            }),
        };
        Ok(match self {
            Self::StitchIdentities => BuiltinSettings::StitchIdentities(StitchSettings {
                max_records_per_identifier: whole(
                    "max_records_per_identifier",
                    StitchSettings::default().max_records_per_identifier,
                )?,
                link_by_phone: match get("link_by_phone") {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(other) => {
                        return Err(SettingError {
                            param: "link_by_phone",
                            message: format!("`{other}` is not true or false"),
                        });
                    }
                },
                exclude_identifiers: match get("exclude_identifiers") {
                    None | Some("") => None,
                    Some(text) => Some(regex::Regex::new(text).map_err(|e| SettingError {
                        param: "exclude_identifiers",
                        message: format!("`{text}` is not a regular expression: {e}"),
                    })?),
                },
            }),
            Self::FitClv => {
                let time_unit = match get("clv_time_unit") {
                    None | Some("weeks") => ClvTimeUnit::Weeks,
                    Some("days") => ClvTimeUnit::Days,
                    Some(other) => {
                        return Err(SettingError {
                            param: "clv_time_unit",
                            message: format!("`{other}`: expected `days` or `weeks`"),
                        });
                    }
                };
                let horizon_months =
                    whole("clv_horizon_months", ClvSettings::default().horizon_months)?;
                let annual_discount_rate = match get("annual_discount_rate") {
                    None => ClvSettings::default().annual_discount_rate,
                    Some(text) => match text.parse::<f64>() {
                        Ok(rate) if rate.is_finite() && rate > -1.0 => rate,
                        _ => {
                            return Err(SettingError {
                                param: "annual_discount_rate",
                                message: format!("`{text}` is not a number > -1"),
                            });
                        }
                    },
                };
                BuiltinSettings::FitClv(ClvSettings {
                    time_unit,
                    horizon_months,
                    annual_discount_rate,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn absent_params_take_the_documented_defaults() {
        let BuiltinSettings::StitchIdentities(s) =
            Builtin::StitchIdentities.settings(&params(&[])).unwrap()
        else {
            panic!("stitch settings expected");
        };
        assert_eq!((s.max_records_per_identifier, s.link_by_phone), (50, true));
        assert!(s.exclude_identifiers.is_none());
        let BuiltinSettings::FitClv(c) = Builtin::FitClv.settings(&params(&[])).unwrap() else {
            panic!("clv settings expected");
        };
        assert_eq!(
            c,
            ClvSettings {
                time_unit: ClvTimeUnit::Weeks,
                horizon_months: 12,
                annual_discount_rate: 0.10
            }
        );
    }

    /// `params()` lists only what `settings` reads: a bad value of each is refused
    /// in its name (`(x` is neither a number, a boolean, a unit nor a regex).
    #[test]
    fn every_listed_param_is_read() {
        for builtin in [Builtin::StitchIdentities, Builtin::FitClv] {
            for &param in builtin.params() {
                let error = builtin.settings(&params(&[(param, "(x")])).unwrap_err();
                assert_eq!(error.param, param);
            }
        }
    }

    #[test]
    fn each_bad_value_names_its_param() {
        for (builtin, key, value, message) in [
            (
                Builtin::FitClv,
                "clv_time_unit",
                "fortnights",
                "param clv_time_unit: `fortnights`: expected `days` or `weeks`",
            ),
            (
                Builtin::FitClv,
                "clv_horizon_months",
                "-3",
                "param clv_horizon_months: `-3` is not a whole number >= 0",
            ),
            (
                Builtin::FitClv,
                "annual_discount_rate",
                "-1",
                "param annual_discount_rate: `-1` is not a number > -1",
            ),
            (
                Builtin::StitchIdentities,
                "link_by_phone",
                "yes",
                "param link_by_phone: `yes` is not true or false",
            ),
            (
                Builtin::StitchIdentities,
                "max_records_per_identifier",
                "lots",
                "param max_records_per_identifier: `lots` is not a whole number >= 0",
            ),
        ] {
            let error = builtin.settings(&params(&[(key, value)])).unwrap_err();
            assert_eq!(error.param, key);
            assert_eq!(error.to_string(), message);
        }
        let error = Builtin::StitchIdentities
            .settings(&params(&[("exclude_identifiers", "^(none@")]))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("param exclude_identifiers: `^(none@` is not a regular expression"),
            "{error}"
        );
    }
}
