//! godpi: recognises the application-layer protocol of a flow from the first payload
//! bytes and sizes seen in each direction, with ports only as a marked last resort.
//! Labels are ids of godb's stable table ([`godb::l7`]).
