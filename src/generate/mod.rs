//! Deterministic synthetic extracts in the DATA_CONTRACT.md layout.
