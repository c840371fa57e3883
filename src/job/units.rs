//! Human-written quantities in job files: durations (`90s`, `1m`, `3d`) and byte
//! sizes (`512MiB`, `4GiB`, `2GB`).

use std::time::Duration;

/// Parses `<integer><unit>` with unit `s`, `m`, `h` or `d`; a bare `0` is zero
/// (`catchup: 0` reads as "none").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let (number, unit) = split_number(text);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration `{text}`: expected e.g. `90s`, `1m`, `2h`, `3d`"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: expected e.g. `90s`, `1m`, `2h`, `3d`"))?;
    n.checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration `{text}` is too large"))
}

/// Parses a byte size: a plain integer is bytes; units `B`, `KB`/`MB`/`GB`/`TB`
/// (powers of 1000) and `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => {
            return Err(format!(
                "invalid size `{text}`: expected e.g. `512MiB`, `4GiB`, `2GB`"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid size `{text}`: expected e.g. `512MiB`, `4GiB`, `2GB`"))?;
    n.checked_mul(factor)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

fn split_number(text: &str) -> (&str, &str) {
    let text = text.trim();
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("3").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("1.5h").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("4GiB"), Ok(4_294_967_296));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("512 MiB"), Ok(536_870_912));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert!(parse_bytes("4gb").is_err());
        assert!(parse_bytes("GiB").is_err());
        assert!(parse_bytes("99999999999TiB").is_err());
    }
}
