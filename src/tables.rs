//! Tabular files through polars — the one module that touches polars: turns serde rows into a
//! DataFrame and writes it as CSV or Parquet (for notebooks and other engines).

use anyhow::{Context, bail};
use polars::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::fs::File;
use std::path::Path;
use std::str::FromStr;

/// File format of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl FromStr for TableFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "parquet" => Ok(Self::Parquet),
            other => Err(format!("unknown table format {other:?} (expected csv or parquet)")),
        }
    }
}

/// Builds a DataFrame from rows that serialise to flat JSON objects. Columns appear in the order
/// of the first row's fields (later new fields are appended); a column whose values are all
/// integers becomes Int64, all numbers Float64, all booleans Boolean, anything else String
/// (nested values as JSON text). Missing values and nulls are nulls.
pub fn frame_from_rows<T: Serialize>(rows: &[T]) -> anyhow::Result<DataFrame> {
    let mut names: Vec<String> = Vec::new();
    let mut objects = Vec::with_capacity(rows.len());
    for row in rows {
        match serde_json::to_value(row).context("serialising a table row")? {
            Value::Object(map) => {
                for key in map.keys() {
                    if !names.iter().any(|n| n == key) {
                        names.push(key.clone());
                    }
                }
                objects.push(map);
            }
            other => bail!("table rows must be objects, got {other}"),
        }
    }
    let columns = names
        .iter()
        .map(|name| {
            let values: Vec<Option<&Value>> = objects.iter().map(|o| o.get(name).filter(|v| !v.is_null())).collect();
            column_from_values(name, &values)
        })
        .collect::<Vec<Column>>();
    anyhow::Context::context(DataFrame::new(rows.len(), columns), "building a table")
}

fn column_from_values(name: &str, values: &[Option<&Value>]) -> Column {
    let present = || values.iter().flatten();
    let name = PlSmallStr::from(name);
    if present().all(|v| v.is_i64()) {
        let data: Vec<Option<i64>> = values.iter().map(|v| v.and_then(Value::as_i64)).collect();
        Column::new(name, data)
    } else if present().all(|v| v.is_number()) {
        let data: Vec<Option<f64>> = values.iter().map(|v| v.and_then(Value::as_f64)).collect();
        Column::new(name, data)
    } else if present().all(|v| v.is_boolean()) {
        let data: Vec<Option<bool>> = values.iter().map(|v| v.and_then(Value::as_bool)).collect();
        Column::new(name, data)
    } else {
        let data: Vec<Option<String>> = values
            .iter()
            .map(|v| v.map(|v| if let Value::String(s) = v { s.clone() } else { v.to_string() }))
            .collect();
        Column::new(name, data)
    }
}

/// Writes `frame` to `path` in `format`, replacing the file.
pub fn write_frame(frame: &mut DataFrame, path: &Path, format: TableFormat) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let written = match format {
        TableFormat::Csv => CsvWriter::new(file).include_header(true).finish(frame),
        TableFormat::Parquet => ParquetWriter::new(file).finish(frame).map(|_| ()),
    };
    anyhow::Context::with_context(written, || format!("writing {}", path.display()))
}

/// Serialises `rows` and writes them to `path` in `format`.
pub fn write_rows<T: Serialize>(rows: &[T], path: &Path, format: TableFormat) -> anyhow::Result<()> {
    let mut frame = frame_from_rows(rows)?;
    write_frame(&mut frame, path, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: &'static str,
        count: u64,
        share: Option<f64>,
        flag: bool,
    }

    #[test]
    fn infers_column_types_and_round_trips_csv_and_parquet() {
        let rows = [
            Row { name: "a", count: 3, share: Some(0.5), flag: true },
            Row { name: "b,c", count: 4, share: None, flag: false },
        ];
        let frame = frame_from_rows(&rows).unwrap();
        let names: Vec<&str> = frame.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["name", "count", "share", "flag"]);
        assert_eq!(frame.column("count").unwrap().dtype(), &DataType::Int64);
        assert_eq!(frame.column("share").unwrap().dtype(), &DataType::Float64);
        assert_eq!(frame.column("share").unwrap().null_count(), 1);

        let dir = std::env::temp_dir().join(format!("timeaudit-tables-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("t.csv");
        write_rows(&rows, &csv, TableFormat::Csv).unwrap();
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), "name,count,share,flag\na,3,0.5,true\n\"b,c\",4,,false\n");
        let parquet = dir.join("t.parquet");
        write_rows(&rows, &parquet, TableFormat::Parquet).unwrap();
        let back = ParquetReader::new(File::open(&parquet).unwrap()).finish().unwrap();
        assert!(back.equals_missing(&frame));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
