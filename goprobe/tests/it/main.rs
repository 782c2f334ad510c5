//! goprobe's integration tests, one binary: command line and configuration, replay of
//! synthetic and real captures checked through the database against the independent
//! oracle, live capture on a veth pair between two network namespaces, and faults (disk
//! full, restarts, safe defaults).

mod cli;
mod common;
mod faults;
mod live;
mod replay;
