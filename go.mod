module github.com/hubwire/hubwire

go 1.26.0

require (
	github.com/gobwas/ws v1.5.0
	github.com/google/go-cmp v0.7.0
	golang.org/x/net v0.62.0
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
