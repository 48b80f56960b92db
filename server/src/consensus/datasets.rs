//! Reading benchmark datasets, one small adapter per format, into
//! [`crowdroom_work::consensus::Answers`] plus gold labels ([`Dataset`]).
//!
//! Why adapters and not a converter script: the folders under
//! `shared/datasets` are verbatim copies of published files, so the
//! benchmark figures are reproducible from the originals. The format is
//! detected from the files present:
//!
//! | files | format |
//! |---|---|
//! | `labels.yaml`, `gt.yaml` | bluebirds: flat YAML `{worker: {item: bool}}`, `{item: bool}` |
//! | `answer.csv`, `truth.csv` | Zheng et al. 2017: CSV `question,worker,answer`, `question,truth` |
//! | `labels.txt`, `gold.txt` | Get-Another-Label: TSV `worker url label`, `url label` (no header) |
//! | `*.tsv` with header `!amt_annotation_ids` | Snow et al. 2008: TSV, worker, item, response, gold columns |
//!
//! Plain `--answers FILE.csv [--gold FILE.csv]` input is CSV with a header
//! line: `task,worker,answer` and `task,answer`. A bad line is an error
//! naming the file and the line; nothing here panics on input.

use std::collections::HashMap;
use std::path::Path;

use crowdroom_work::consensus::AnswersBuilder;
use crowdroom_work::consensus::dataset::Dataset;

use super::flat_yaml::{self, Value};
use crate::error::{Error, Result};

/// Reads a dataset folder in whichever supported format its files show.
pub fn load_dir(directory: &Path) -> Result<Dataset> {
    if !directory.is_dir() {
        return Err(Error::BadRequest(format!(
            "{} is not a directory",
            directory.display()
        )));
    }
    let name = directory.file_name().map_or_else(
        || directory.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let (builder, gold) = if directory.join("labels.yaml").is_file() {
        bluebirds(directory)?
    } else if directory.join("answer.csv").is_file() {
        let answers = read_delimited(&directory.join("answer.csv"), b',', Some(3), 3)?;
        let truth = optional(&directory.join("truth.csv"), |path| {
            read_delimited(path, b',', Some(2), 2)
        })?;
        (triples(answers, [0, 1, 2]), pairs(truth))
    } else if directory.join("labels.txt").is_file() {
        let labels = read_delimited(&directory.join("labels.txt"), b'\t', None, 3)?;
        let gold = optional(&directory.join("gold.txt"), |path| {
            read_delimited(path, b'\t', None, 2)
        })?;
        // labels.txt is worker, url, label.
        (triples(labels, [1, 0, 2]), pairs(gold))
    } else if let Some(path) = find_snow_tsv(directory)? {
        snow(&path)?
    } else {
        return Err(Error::BadRequest(format!(
            "{}: no known dataset format (expected labels.yaml + gt.yaml, answer.csv + truth.csv, labels.txt + gold.txt, or a Snow et al. .tsv)",
            directory.display()
        )));
    };
    assemble(name, builder, gold)
}

/// Reads `--answers FILE.csv` (`task,worker,answer`) and optional `--gold FILE.csv` (`task,answer`).
pub fn load_csv(answers: &Path, gold: Option<&Path>) -> Result<Dataset> {
    let name = answers.file_name().map_or_else(
        || answers.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let rows = read_delimited(answers, b',', Some(3), 3)?;
    let gold = match gold {
        Some(path) => read_delimited(path, b',', Some(2), 2)?,
        None => Vec::new(),
    };
    assemble(name, triples(rows, [0, 1, 2]), pairs(gold))
}

/// Builds the answers and resolves gold item names to indices.
fn assemble(name: String, builder: AnswersBuilder, gold: Vec<(String, String)>) -> Result<Dataset> {
    let answers = builder.build()?;
    let index: HashMap<&str, u32> = answers
        .item_names()
        .iter()
        .enumerate()
        .map(|(item, name)| (name.as_str(), item as u32))
        .collect();
    let mut by_item: Vec<Option<String>> = vec![None; answers.items()];
    let mut gold_unanswered = 0;
    for (item, label) in gold {
        match index.get(item.as_str()) {
            Some(&item) => by_item[item as usize] = Some(label),
            None => gold_unanswered += 1,
        }
    }
    let gold = by_item
        .into_iter()
        .enumerate()
        .filter_map(|(item, label)| label.map(|label| (item as u32, label)))
        .collect();
    Ok(Dataset {
        name,
        answers,
        gold,
        gold_unanswered,
    })
}

/// Pushes rows into a builder, taking (item, worker, label) from the given columns.
fn triples(rows: Vec<Vec<String>>, [item, worker, label]: [usize; 3]) -> AnswersBuilder {
    let mut builder = AnswersBuilder::new();
    for row in &rows {
        builder.push(&row[item], &row[worker], &row[label]);
    }
    builder
}

/// Two-field rows as (item, label) pairs.
fn pairs(rows: Vec<Vec<String>>) -> Vec<(String, String)> {
    rows.into_iter()
        .filter_map(|row| {
            let mut fields = row.into_iter();
            Some((fields.next()?, fields.next()?))
        })
        .collect()
}

/// Runs `read` when the file exists; a missing gold file means no gold.
fn optional(
    path: &Path,
    read: impl FnOnce(&Path) -> Result<Vec<Vec<String>>>,
) -> Result<Vec<Vec<String>>> {
    if path.is_file() {
        read(path)
    } else {
        Ok(Vec::new())
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|error| Error::BadRequest(format!("cannot read {}: {error}", path.display())))
}

/// Reads a delimited file into rows of exactly `fields` non-empty fields.
/// `header`: the number of fields of a header line to skip (`None`: no
/// header). Blank lines are skipped; `\r\n` endings are accepted.
fn read_delimited(
    path: &Path,
    delimiter: u8,
    header: Option<usize>,
    fields: usize,
) -> Result<Vec<Vec<String>>> {
    let text = read_text(path)?;
    let mut rows = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_end_matches('\r')));
    if let Some(header_fields) = header {
        let Some((number, line)) = lines.next() else {
            return Err(Error::BadRequest(format!(
                "{}: empty file, expected a header line",
                path.display()
            )));
        };
        let found = split_line(line, delimiter)
            .map_err(|message| line_error(path, number, message))?
            .len();
        if found != header_fields {
            return Err(line_error(
                path,
                number,
                &format!("expected a header of {header_fields} fields, found {found}"),
            ));
        }
    }
    for (number, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let row =
            split_line(line, delimiter).map_err(|message| line_error(path, number, message))?;
        if row.len() != fields {
            return Err(line_error(
                path,
                number,
                &format!("expected {fields} fields, found {}", row.len()),
            ));
        }
        if let Some(column) = row.iter().position(|field| field.trim().is_empty()) {
            return Err(line_error(
                path,
                number,
                &format!("field {} is empty", column + 1),
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn line_error(path: &Path, line: usize, message: &str) -> Error {
    Error::BadRequest(format!("{}:{line}: {message}", path.display()))
}

/// Splits one line; `"..."` quotes a field (with `""` for a quote), as in
/// RFC 4180, except that a quoted field cannot span lines.
fn split_line(line: &str, delimiter: u8) -> std::result::Result<Vec<String>, &'static str> {
    let delimiter = delimiter as char;
    let mut fields = Vec::new();
    let mut characters = line.chars().peekable();
    loop {
        let mut field = String::new();
        if characters.peek() == Some(&'"') {
            characters.next();
            loop {
                match characters.next() {
                    Some('"') if characters.peek() == Some(&'"') => {
                        characters.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(character) => field.push(character),
                    None => return Err("unterminated quoted field"),
                }
            }
            match characters.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(character) if character == delimiter => fields.push(field),
                Some(_) => return Err("text after a closing quote"),
            }
        } else {
            loop {
                match characters.next() {
                    None => {
                        fields.push(field.trim().to_owned());
                        return Ok(fields);
                    }
                    Some(character) if character == delimiter => break,
                    Some(character) => field.push(character),
                }
            }
            fields.push(field.trim().to_owned());
        }
    }
}

/// bluebirds: `labels.yaml` `{worker: {item: bool}}` and `gt.yaml` `{item: bool}`.
fn bluebirds(directory: &Path) -> Result<(AnswersBuilder, Vec<(String, String)>)> {
    let labels_path = directory.join("labels.yaml");
    let source = labels_path.display().to_string();
    let Value::Map(workers) = flat_yaml::parse(&read_text(&labels_path)?, &source)? else {
        return Err(Error::BadRequest(format!(
            "{source}: expected a map of workers"
        )));
    };
    let mut builder = AnswersBuilder::new();
    for (worker, items) in workers {
        let Value::Map(items) = items else {
            return Err(Error::BadRequest(format!(
                "{source}: worker {worker:?} must map to {{item: label}}"
            )));
        };
        for (item, label) in items {
            let Value::Scalar(label) = label else {
                return Err(Error::BadRequest(format!(
                    "{source}: worker {worker:?}, item {item:?}: the label must be a scalar"
                )));
            };
            builder.push(&item, &worker, &label);
        }
    }
    let gold_path = directory.join("gt.yaml");
    let mut gold = Vec::new();
    if gold_path.is_file() {
        let source = gold_path.display().to_string();
        let Value::Map(items) = flat_yaml::parse(&read_text(&gold_path)?, &source)? else {
            return Err(Error::BadRequest(format!(
                "{source}: expected a map of items"
            )));
        };
        for (item, label) in items {
            let Value::Scalar(label) = label else {
                return Err(Error::BadRequest(format!(
                    "{source}: item {item:?}: the label must be a scalar"
                )));
            };
            gold.push((item, label));
        }
    }
    Ok((builder, gold))
}

/// The header Snow et al.'s standardized TSV files start with.
const SNOW_HEADER: &str = "!amt_annotation_ids\t!amt_worker_ids\torig_id\tresponse\tgold";

fn find_snow_tsv(directory: &Path) -> Result<Option<std::path::PathBuf>> {
    let entries = std::fs::read_dir(directory).map_err(|error| {
        Error::BadRequest(format!("cannot list {}: {error}", directory.display()))
    })?;
    let mut found: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "tsv"))
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}

/// Snow et al. 2008: `annotation worker item response gold`, gold on every row.
fn snow(path: &Path) -> Result<(AnswersBuilder, Vec<(String, String)>)> {
    let text = read_text(path)?;
    let first = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    if first != SNOW_HEADER {
        return Err(line_error(
            path,
            1,
            &format!("expected the header {SNOW_HEADER:?}"),
        ));
    }
    let rows = read_delimited(path, b'\t', Some(5), 5)?;
    let mut builder = AnswersBuilder::new();
    let mut gold = Vec::with_capacity(rows.len());
    for row in rows {
        builder.push(&row[2], &row[1], &row[3]);
        gold.push((row[2].clone(), row[4].clone()));
    }
    Ok((builder, gold))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_csv() {
        assert_eq!(split_line("a, b ,c", b',').unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_line("\"x, y\",\"say \"\"hi\"\"\",", b',').unwrap(),
            ["x, y", "say \"hi\"", ""]
        );
        assert!(split_line("\"open", b',').is_err());
        assert!(split_line("\"a\"b,c", b',').is_err());
        assert_eq!(
            split_line("w\thttp://a,b\tG", b'\t').unwrap(),
            ["w", "http://a,b", "G"]
        );
    }

    #[test]
    fn reads_csv_with_gold_and_reports_bad_lines() {
        let directory = tempfile_dir();
        let answers = directory.join("answers.csv");
        let gold = directory.join("gold.csv");
        std::fs::write(
            &answers,
            "task,worker,answer\nt1,w1,a\nt1,w2,b\r\n\nt2,w1,a\n",
        )
        .unwrap();
        std::fs::write(&gold, "task,answer\nt1,b\nt9,a\n").unwrap();
        let dataset = load_csv(&answers, Some(&gold)).unwrap();
        assert_eq!(dataset.name, "answers.csv");
        assert_eq!((dataset.answers.items(), dataset.answers.len()), (2, 3));
        assert_eq!(dataset.categorical_gold(), vec![(0, Some(1))]);
        assert_eq!(dataset.gold_unanswered, 1);
        std::fs::write(&answers, "task,worker,answer\nt1,w1,a\nt1,w2\n").unwrap();
        let error = load_csv(&answers, None).unwrap_err().to_string();
        assert!(
            error.ends_with("answers.csv:3: expected 3 fields, found 2"),
            "{error}"
        );
        let error = load_csv(&directory.join("missing.csv"), None)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("cannot read"), "{error}");
        let error = load_dir(&directory).unwrap_err().to_string();
        assert!(error.contains("no known dataset format"), "{error}");
        std::fs::remove_dir_all(&directory).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let directory = std::env::temp_dir().join(format!(
            "crowdroom-consensus-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }
}
