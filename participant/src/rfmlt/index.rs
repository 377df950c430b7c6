//! The customers table by id: each id stored once in a hash table (foldhash),
//! in table order, and a one-entry lookup cache for the dated tables, whose
//! rows of one customer usually come together.

use std::hash::BuildHasher;

use time::Date;

use super::bad_rows::{Reason, RowError};
use super::reader::Row;

/// One customer of the customers table.
pub(super) struct CustomerRow {
    /// Position among the consenting customers; none for a refusal.
    pub(super) index: Option<usize>,
    /// The relationship's start.
    pub(super) since: Option<Date>,
}

/// The customers table by id, with a one-entry cache: rows of one customer
/// usually come together.
pub(super) struct Lookup<'k> {
    known: &'k CustomerIndex,
    last_id: String,
    last: Option<&'k CustomerRow>,
}

/// The customers table by id. Each id is stored once, in table order, and
/// later moved into its customer's features.
#[derive(Default)]
pub(super) struct CustomerIndex {
    hasher: foldhash::fast::RandomState,
    table: hashbrown::HashTable<u32>,
    pub(super) ids: Vec<String>,
    pub(super) rows: Vec<CustomerRow>,
}

impl CustomerIndex {
    pub(super) fn with_capacity(customers: usize) -> Self {
        Self {
            table: hashbrown::HashTable::with_capacity(customers),
            ids: Vec::with_capacity(customers),
            rows: Vec::with_capacity(customers),
            ..Self::default()
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<&CustomerRow> {
        let hash = self.hasher.hash_one(id);
        self.table
            .find(hash, |&i| self.ids[i as usize] == id)
            .map(|&i| &self.rows[i as usize])
    }

    /// Adds a customer; false if the id is already there.
    pub(super) fn insert(&mut self, id: &str, row: CustomerRow) -> bool {
        let Self {
            hasher,
            table,
            ids,
            rows,
        } = self;
        let hash = hasher.hash_one(id);
        if table.find(hash, |&i| ids[i as usize] == id).is_some() {
            return false;
        }
        table.insert_unique(hash, ids.len() as u32, |&i| {
            hasher.hash_one(&ids[i as usize])
        });
        ids.push(id.to_string());
        rows.push(row);
        true
    }
}

impl<'k> Lookup<'k> {
    pub(super) fn new(known: &'k CustomerIndex) -> Self {
        Self {
            known,
            last_id: String::new(),
            last: None,
        }
    }

    /// The customer a row names, which must be in the customers table.
    pub(super) fn customer(&mut self, row: &Row<'_, '_>) -> Result<&'k CustomerRow, RowError> {
        let id = row.text("customer_id")?;
        if let Some(last) = self.last.filter(|_| self.last_id == id) {
            return Ok(last);
        }
        let found = self.known.get(id).ok_or_else(|| {
            row.bad(
                Reason::UnknownCustomer,
                "customer_id",
                format!("{id:?} is not in the customers table"),
            )
        })?;
        self.last_id.clear();
        self.last_id.push_str(id);
        self.last = Some(found);
        Ok(found)
    }
}
