//! Statements whose length follows the data: a run's multi-row inserts,
//! `VALUES` lists and `IN` lists, written with `?` for every parameter in
//! the order they are bound.
//!
//! PostgreSQL needs its parameters numbered (`$1`, `$2`, ...); SQLite
//! takes `?` as it is, and should: sqlx-sqlite asks SQLite for the name of
//! every parameter it binds, and SQLite finds a numbered parameter's name
//! by scanning the statement's list of names, so binding n numbered
//! parameters costs n². At a run of 256 answers (1,792 parameters in one
//! insert) that lookup was 18% of the writer's time; anonymous parameters
//! have no names to scan.
//!
//! A read of many rows comes back as one ([`json_rows_sql`]): sqlx-sqlite
//! hands each row of a result from the SQLite thread to the caller's task
//! on its own (a channel send and a wake-up each). Under a crowd, on a
//! saturated machine, every one of those waited for a CPU: a run of
//! grants read about 3,000 rows in 25-80 ms; a 256-row `INSERT ...
//! RETURNING` took 8-36 ms where the same insert returning nothing took
//! 2-3 ms.

use sqlx::AnyConnection;

/// `count` copies of `row` joined by `separator`.
pub(super) fn rows(count: usize, row: &str, separator: &str) -> String {
    let mut sql = String::with_capacity(count * (row.len() + separator.len()));
    for i in 0..count {
        if i > 0 {
            sql.push_str(separator);
        }
        sql.push_str(row);
    }
    sql
}

/// The statement as `conn`'s database takes it: `sql`'s `?`s numbered in
/// turn for PostgreSQL, left as they are for SQLite. `sql` holds no other
/// `?` (no string literal or operator with one).
pub(super) fn placeholders(conn: &AnyConnection, sql: String) -> String {
    if conn.backend_name() == "SQLite" {
        return sql;
    }
    numbered(&sql)
}

fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 2);
    let mut next = 1usize;
    for piece in sql.split_inclusive('?') {
        match piece.strip_suffix('?') {
            Some(text) => {
                out.push_str(text);
                out.push('$');
                out.push_str(&next.to_string());
                next += 1;
            }
            None => out.push_str(piece),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_repeat_and_placeholders_number_in_turn() {
        assert_eq!(
            super::rows(2, "(?, 'x', ?)", ", "),
            "(?, 'x', ?), (?, 'x', ?)"
        );
        assert_eq!(super::rows(0, "(?)", ", "), "");
        assert_eq!(
            super::numbered("a > ? AND ((b = ?) OR (b = ?))"),
            "a > $1 AND ((b = $2) OR (b = $3))"
        );
        assert_eq!(super::numbered("no parameters"), "no parameters");
    }
}
