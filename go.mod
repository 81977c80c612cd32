module github.com/hubwire/hubwire

go 1.24.0

require (
	github.com/gobwas/ws v1.4.0
	github.com/google/go-cmp v0.7.0
	go.etcd.io/bbolt v1.4.3
	golang.org/x/net v0.50.0
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	golang.org/x/sys v0.41.0 // indirect
	golang.org/x/text v0.34.0 // indirect
)
