//! The query engine: goquery's statements (query type, conditions, time range, sort
//! order) run over the blocks of a database, aggregated by the queried attributes.
