//! CSV data files for scenarios (issue 17; like Artillery's payloads and k6's
//! SharedArray): `[data] users = "data/users.csv"` loads a CSV file (path relative to
//! the scenario file; the first line names the columns), and `{data.users.COLUMN}`
//! takes that column of one row:
//! - in a client template's `name`, `uri` and `password`: row `n` (the client's number,
//!   1-based), so a template makes one client per row;
//! - in step texts (where `{i}` works): row `{n}` in a template's steps, else row `{i}`
//!   (the repeat round) - texts from a file.
//!
//! Rows wrap around (row N+1 is row 1). An unknown file, column or table is an error of
//! the scenario.

use std::collections::BTreeMap;
use std::path::Path;

/// One CSV file: column names and rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Column names (the first line).
    pub columns: Vec<String>,
    /// Rows, each as many fields as columns.
    pub rows: Vec<Vec<String>>,
}

/// The data tables of a scenario by name.
pub type Data = BTreeMap<String, Table>;

/// Reads the CSV file at `path`. Errors: unreadable, malformed, or no data row.
pub fn load(path: &Path) -> Result<Table, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for r in reader.records() {
        let r = r.map_err(|e| format!("{}: {e}", path.display()))?;
        rows.push(r.iter().map(str::to_string).collect());
    }
    if rows.is_empty() {
        return Err(format!("{}: no data rows below the header", path.display()));
    }
    Ok(Table { columns, rows })
}

/// `text` with every `{data.TABLE.COLUMN}` replaced by that column of row `row`
/// (1-based, wrapping). Errors: the unknown `TABLE.COLUMN` references.
pub fn expand(text: &str, data: &Data, row: usize) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{data.") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + "{data.".len()..];
        let Some(end) = tail.find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let reference = &tail[..end];
        match value(data, reference, row) {
            Some(v) => out.push_str(v),
            None => {
                unknown.push(reference.to_string());
                out.push_str(&rest[i..i + "{data.".len() + end + 1]);
            }
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

fn value<'a>(data: &'a Data, reference: &str, row: usize) -> Option<&'a str> {
    let (table, column) = reference.split_once('.')?;
    let t = data.get(table)?;
    let col = t.columns.iter().position(|c| c == column)?;
    let r = t.rows.get((row.max(1) - 1) % t.rows.len())?;
    r.get(col).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_wrap_and_unknowns_are_named() {
        let mut data = Data::new();
        data.insert(
            "users".into(),
            Table {
                columns: vec!["name".into(), "uri".into()],
                rows: vec![
                    vec!["alice".into(), "sip:alice@contoso.com".into()],
                    vec!["bob".into(), "sip:bob@contoso.com".into()],
                ],
            },
        );
        assert_eq!(expand("hi {data.users.name}", &data, 2).unwrap(), "hi bob");
        assert_eq!(expand("{data.users.name}", &data, 3).unwrap(), "alice");
        assert_eq!(
            expand("{data.users.mail} {data.x.y}", &data, 1).unwrap_err(),
            vec!["users.mail".to_string(), "x.y".to_string()]
        );
        assert_eq!(expand("no refs {i}", &data, 1).unwrap(), "no refs {i}");
    }
}
