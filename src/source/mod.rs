//! Raw extract reading: formats, contract schemas, typing, rejects.
