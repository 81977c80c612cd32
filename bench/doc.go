// Package bench compares hubwire's MQTT 3.1.1 codec (package
// github.com/hubwire/hubwire/packet) with the codecs of
// github.com/eclipse/paho.mqtt.golang, github.com/eclipse/paho.golang and
// github.com/mochi-mqtt/server/v2, side by side in one run.
//
// It is its own Go module so that the peers never become dependencies of
// the library. Everything lives in test files:
//
//   - codec_test.go and stream_test.go hold the benchmarks, one Go benchmark
//     per case with one sub-benchmark per codec (…/codec=hubwire,
//     …/codec=paho, …), so benchstat and cmd/compare can line them up;
//   - differential_test.go checks that bytes encoded by hubwire decode to the
//     same logical packet with each peer and the other way round, with every
//     tolerated difference listed and justified;
//   - invalid_test.go feeds malformed and protocol-violating inputs to every
//     decoder and keeps the accept/reject table in testdata/invalid.md.
//
// Each codec is wrapped in an adapter (peer_*_test.go) that maps it to and
// from one neutral packet struct; README.md explains how to add another.
package bench
