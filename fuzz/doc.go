// Package fuzz holds hubwire's fuzz targets, one file per package under
// test. Each target checks invariants (no panic, round trips stable, split
// input equals whole input) rather than fixed outputs. ./scripts/test runs
// every target for a short fixed time; crashers found locally are kept as
// seeds under testdata/fuzz/<Target>/ so they stay fixed.
package fuzz
