//! goquery's library: command-line arguments turned into a godb query statement, and
//! the renderers of its results (table, JSON, CSV).
