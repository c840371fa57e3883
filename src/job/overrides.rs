//! `--set key=value` on a job: a storage root (`raw`, `warehouse`) or a param.
//! One rule for every command that runs a job or reads its warehouse (`run`,
//! `backfill`, `scheduler`, `explain`), so they all see the same warehouse.

use std::collections::BTreeMap;

use super::model::Job;

/// A job's storage roots (templates, not yet interpolated) and params after
/// `--set` overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overridden {
    pub raw: String,
    pub warehouse: String,
    pub params: BTreeMap<String, String>,
}

/// Applies `overrides` to `job`'s storage roots and params. A key that is
/// neither a root nor a param of the job, and `date` (which has its own flag),
/// are errors that name the job's params.
pub fn apply_overrides(job: &Job, overrides: &[(String, String)]) -> Result<Overridden, String> {
    let mut result = Overridden {
        raw: job.storage.raw.clone(),
        warehouse: job.storage.warehouse.clone(),
        params: job.params.clone(),
    };
    for (key, value) in overrides {
        match key.as_str() {
            "raw" => result.raw = value.clone(),
            "warehouse" => result.warehouse = value.clone(),
            "date" => return Err("use --date to set the logical date, not --set date=".into()),
            _ => match result.params.get_mut(key) {
                Some(param) => *param = value.clone(),
                None => {
                    let params: Vec<&str> = job.params.keys().map(String::as_str).collect();
                    return Err(format!(
                        "--set {key}=…: `{key}` is neither a storage root (raw, warehouse) nor a param of job {} (its params: {})",
                        job.name,
                        params.join(", ")
                    ));
                }
            },
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/customer_360.yaml");
        crate::job::load(&path).expect("the bundled job loads")
    }

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn roots_and_params_are_overridden_the_rest_kept() {
        let job = job();
        let o = apply_overrides(
            &job,
            &set(&[("warehouse", "/tmp/w"), ("fatigue_days", "14")]),
        )
        .unwrap();
        assert_eq!(o.warehouse, "/tmp/w");
        assert_eq!(o.raw, "sample_data/raw");
        assert_eq!(o.params["fatigue_days"], "14");
        assert_eq!(o.params["engaged_days"], "90");
    }

    #[test]
    fn an_unknown_key_names_the_params_and_date_has_its_own_flag() {
        let job = job();
        let e = apply_overrides(&job, &set(&[("customer_360.path", "x")])).unwrap_err();
        assert!(
            e.starts_with("--set customer_360.path=…: `customer_360.path` is neither"),
            "{e}"
        );
        assert!(e.contains("fatigue_days"), "{e}");
        let e = apply_overrides(&job, &set(&[("date", "2026-01-01")])).unwrap_err();
        assert!(e.contains("use --date"), "{e}");
    }
}
