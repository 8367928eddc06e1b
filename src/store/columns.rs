//! The observation columns of the store: one per `Observation` field, named as its serde name,
//! and the conversion between an observation and a row of typed values (through serde, so a
//! field can never be forgotten: a unit test compares the lists).

use serde_json::{Map, Number, Value};
use timeaudit_analysis::observation::Observation;

/// Storage class of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Text,
    /// 64-bit integer.
    Int,
    /// Double.
    Real,
}

/// Every observation column, in `Observation` field order.
pub const OBSERVATION_COLUMNS: &[(&str, Kind)] = &[
    ("target", Kind::Text),
    ("address", Kind::Text),
    ("method", Kind::Text),
    ("port", Kind::Int),
    ("t_send", Kind::Real),
    ("t_recv", Kind::Real),
    ("offset", Kind::Real),
    ("offset_lo", Kind::Real),
    ("offset_hi", Kind::Real),
    ("delay", Kind::Real),
    ("stratum", Kind::Int),
    ("refid", Kind::Text),
    ("leap", Kind::Int),
    ("version", Kind::Int),
    ("poll", Kind::Int),
    ("precision", Kind::Int),
    ("root_delay", Kind::Real),
    ("root_dispersion", Kind::Real),
    ("reference_time", Kind::Real),
    ("samples", Kind::Int),
    ("http_status", Kind::Int),
    ("date", Kind::Text),
    ("server", Kind::Text),
    ("age", Kind::Int),
    ("redirect", Kind::Text),
    ("cert_problem", Kind::Text),
    ("error", Kind::Text),
];

/// One typed cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Integer.
    Int(i64),
    /// Double.
    Real(f64),
    /// Text.
    Text(String),
}

/// `"target", "address", ...` quoted for SQL (several names are keywords).
pub fn quoted_list() -> String {
    OBSERVATION_COLUMNS.iter().map(|(n, _)| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// The cells of `obs`, in column order.
pub fn to_cells(obs: &Observation) -> Vec<Cell> {
    let Ok(Value::Object(map)) = serde_json::to_value(obs) else {
        return vec![Cell::Null; OBSERVATION_COLUMNS.len()];
    };
    OBSERVATION_COLUMNS
        .iter()
        .map(|(name, kind)| match (map.get(*name), kind) {
            (None | Some(Value::Null), _) => Cell::Null,
            (Some(Value::String(s)), _) => Cell::Text(s.clone()),
            // Only `age` (u64) could exceed i64; clamp rather than lose the row.
            (Some(Value::Number(n)), Kind::Int) => Cell::Int(n.as_i64().unwrap_or(i64::MAX)),
            (Some(Value::Number(n)), _) => n.as_f64().map_or(Cell::Null, Cell::Real),
            (Some(other), _) => Cell::Text(other.to_string()),
        })
        .collect()
}

/// Rebuilds an observation from its cells (column order).
pub fn from_cells(cells: Vec<Cell>) -> Result<Observation, (String, String)> {
    let mut map = Map::new();
    for ((name, _), cell) in OBSERVATION_COLUMNS.iter().zip(cells) {
        let v = match cell {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::Number(i.into()),
            Cell::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Cell::Text(s) => Value::String(s),
        };
        map.insert((*name).to_string(), v);
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| ("observation".to_string(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use timeaudit_analysis::observation::Method;

    #[test]
    fn columns_are_exactly_the_observation_fields() {
        let Value::Object(map) = serde_json::to_value(Observation::default()).unwrap() else { panic!() };
        let fields: Vec<&str> = map.keys().map(String::as_str).collect();
        let cols: Vec<&str> = OBSERVATION_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(cols, fields, "Observation changed: add a column and a schema migration");
    }

    #[test]
    fn round_trips_every_field() {
        let obs = Observation {
            target: "ntp://a.example".into(),
            address: "::1".into(),
            method: Some(Method::Ntp),
            port: Some(123),
            t_send: 1.7e9 + 0.25,
            t_recv: 1.7e9 + 0.5,
            offset: Some(-90.125),
            offset_lo: Some(-90.25),
            offset_hi: Some(-90.0),
            delay: Some(0.25),
            stratum: Some(2),
            refid: Some("127.127.1.0".into()),
            leap: Some(3),
            version: Some(4),
            poll: Some(-6),
            precision: Some(-20),
            root_delay: Some(0.001),
            root_dispersion: Some(0.002),
            reference_time: Some(1.6e9),
            samples: Some(4),
            http_status: Some(200),
            date: Some("Sun, 22 Nov 2026 03:00:00 GMT".into()),
            server: Some("nginx".into()),
            age: Some(u64::from(u32::MAX) + 1),
            redirect: Some("https://b.example/".into()),
            cert_problem: Some("expired".into()),
            error: Some("unsynchronized".into()),
        };
        assert_eq!(from_cells(to_cells(&obs)).unwrap(), obs);
        let empty = Observation::default();
        assert_eq!(from_cells(to_cells(&empty)).unwrap(), empty);
    }
}
