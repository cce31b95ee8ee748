//! loopwarden's proof lab: mirrors a host into throwaway network namespaces and fires the real
//! attacks from a neighbour namespace.
#![warn(missing_docs)]

pub mod netns;
