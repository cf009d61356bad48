//! The statements one physical connection has prepared, by statement text.
//!
//! Spin prepares every guest statement on every call (Parse, Describe, then Bind, Execute): two
//! round trips. A statement prepared once per connection and reused costs one. The cache is
//! bounded, evicting the least recently used statement (tokio-postgres closes it on the server
//! when the last handle is dropped).

use std::collections::HashMap;

use tokio_postgres::Statement;

/// Statements kept per connection: far more than the distinct statement texts an app issues,
/// small enough that the server's per-session memory for them stays modest.
pub const STATEMENTS_PER_CONNECTION_MAX: usize = 256;

/// Generic over what it holds only so that its eviction can be unit-tested without a server.
pub struct StatementCache<S = Statement> {
    entries: HashMap<String, Entry<S>>,
    /// Advances on every use; an entry's `last_used` orders evictions.
    clock: u64,
    capacity: usize,
}

struct Entry<S> {
    statement: S,
    last_used: u64,
}

impl<S: Clone> StatementCache<S> {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a statement cache holds at least one statement");
        Self { entries: HashMap::new(), clock: 0, capacity }
    }

    pub fn get(&mut self, text: &str) -> Option<S> {
        self.clock += 1;
        let entry = self.entries.get_mut(text)?;
        entry.last_used = self.clock;
        Some(entry.statement.clone())
    }

    /// Keeps a statement the server accepted; a statement that failed to prepare is never passed
    /// here, so a failure cannot be cached.
    pub fn insert(&mut self, text: &str, statement: S) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(text) {
            self.evict_least_recently_used();
        }
        self.clock += 1;
        self.entries.insert(text.to_owned(), Entry { statement, last_used: self.clock });
        assert!(self.entries.len() <= self.capacity);
    }

    pub fn remove(&mut self, text: &str) {
        self.entries.remove(text);
    }

    /// Forgets every statement, e.g. after the session's prepared statements were deallocated.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self.entries.iter().min_by_key(|(_, entry)| entry.last_used).map(|(text, _)| text.clone());
        if let Some(text) = oldest {
            self.entries.remove(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_statement_at_capacity() {
        let mut cache = StatementCache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert_eq!(cache.get("a"), Some(1));
        cache.insert("c", 3);
        assert_eq!(cache.get("b"), None, "b was used least recently");
        assert_eq!((cache.get("a"), cache.get("c")), (Some(1), Some(3)));
        cache.insert("c", 4);
        assert_eq!((cache.get("a"), cache.get("c")), (Some(1), Some(4)), "replacing an entry evicts nothing");
        cache.remove("a");
        assert_eq!(cache.get("a"), None);
        cache.clear();
        assert_eq!(cache.get("c"), None);
    }
}
