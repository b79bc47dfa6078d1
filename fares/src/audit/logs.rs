//! Log files given with `--logs`, scanned line by line for raw card numbers (SPEC §6.7).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::Context;
use events_schema::card;

/// A raw card number on a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardNumberInLog {
    pub file: PathBuf,
    /// Counted from 1.
    pub line: usize,
}

/// Every line of `files` that holds a raw card number. A file that cannot be read is an error:
/// the audit was asked to check it.
pub fn card_numbers(files: &[PathBuf]) -> anyhow::Result<Vec<CardNumberInLog>> {
    let mut found = Vec::new();
    for file in files {
        found.extend(scan(file).with_context(|| {
            format!(
                "cannot read the log file {} — check the path given to --logs",
                file.display()
            )
        })?);
    }
    Ok(found)
}

fn scan(file: &Path) -> std::io::Result<Vec<CardNumberInLog>> {
    let mut reader = BufReader::new(File::open(file)?);
    let mut found = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    while reader.read_until(b'\n', &mut line)? > 0 {
        number += 1;
        if card::has_card_number(&line) {
            found.push(CardNumberInLog {
                file: file.to_owned(),
                line: number,
            });
        }
        line.clear();
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_lines_with_a_card_number() {
        let file = std::env::temp_dir().join(format!("fares-audit-{}.log", std::process::id()));
        std::fs::write(
            &file,
            "ok\nfare wr_1 pan 4111 1111 1111 1111\nid 01a21c04-4111-1111-1111-1111b9785a13\n",
        )
        .unwrap();
        let found = card_numbers(std::slice::from_ref(&file)).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(found, [CardNumberInLog { file, line: 2 }]);
        assert!(card_numbers(&[PathBuf::from("/nonexistent/fares.log")]).is_err());
    }
}
