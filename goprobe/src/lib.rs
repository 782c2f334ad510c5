//! goprobe's library: configuration, capture threads (live and from files), interval
//! rotation and the writer thread that hands flow tables to godb.
