//! Unit tests of the checks, on evidence made up in memory.
