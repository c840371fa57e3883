//! DataFusion UDFs shared by every SQL file.
