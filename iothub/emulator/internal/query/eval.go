package query

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Match reports whether the twin document doc satisfies the query's WHERE
// condition (true when there is none). doc is a twin as encoding/json
// decodes it into an any: map[string]any, []any, string, float64 or
// json.Number, bool and nil; int and int64 numbers are accepted too.
// Match does not modify doc and is safe for concurrent use.
func (q *Query) Match(doc any) bool {
	if q.where == nil {
		return true
	}
	v := q.where.eval(doc)
	b, ok := v.(bool)
	return ok && b
}

// undefinedT is the type of undefined, the value of a path that names
// nothing and of a comparison that has no answer.
type undefinedT struct{}

var undefined any = undefinedT{}

// expr is a node of a condition.
type expr interface {
	eval(doc any) any
	// write appends the canonical text of the node, for a query from src.
	write(b *strings.Builder, src Source)
}

type literal struct{ v any } // string, float64, bool or nil

type path struct{ segs []string }

type isDefined struct{ e expr }

type notExpr struct{ e expr }

type logical struct {
	or   bool
	l, r expr
}

type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var opText = [...]string{opEq: "=", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">="}

func opOf(s string) op {
	switch s {
	case "!=", "<>":
		return opNe
	case "<":
		return opLt
	case "<=":
		return opLe
	case ">":
		return opGt
	case ">=":
		return opGe
	}
	return opEq
}

type comparison struct {
	op   op
	l, r expr
}

func (e *literal) eval(any) any { return e.v }

func (e *path) eval(doc any) any {
	cur := doc
	for _, s := range e.segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return undefined
		}
		cur, ok = m[s]
		if !ok {
			return undefined
		}
	}
	return cur
}

func (e *isDefined) eval(doc any) any {
	return e.e.eval(doc) != undefined
}

func (e *notExpr) eval(doc any) any {
	if b, ok := e.e.eval(doc).(bool); ok {
		return !b
	}
	return undefined
}

func (e *logical) eval(doc any) any {
	l, lok := e.l.eval(doc).(bool)
	if lok && l == e.or {
		return l // false AND x, true OR x
	}
	r, rok := e.r.eval(doc).(bool)
	if rok && r == e.or {
		return r
	}
	if lok && rok {
		return l // both !e.or
	}
	return undefined
}

func (e *comparison) eval(doc any) any {
	l := e.l.eval(doc)
	r := e.r.eval(doc)
	if l == undefined || r == undefined {
		return undefined
	}
	l, r = normalize(l), normalize(r)
	switch e.op {
	case opEq:
		return equal(l, r)
	case opNe:
		return !equal(l, r)
	}
	c, ok := order(l, r)
	if !ok {
		return undefined
	}
	switch e.op {
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	}
	return c >= 0
}

// normalize turns every number form into float64; a json.Number that does
// not parse stays a string of digits no number equals.
func normalize(v any) any {
	switch n := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return string(n)
		}
		return f
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case float32:
		return float64(n)
	}
	return v
}

// equal is deep equality of normalized JSON values; values of different
// types are unequal.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(normalize(xv), normalize(yv)) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(normalize(x[i]), normalize(y[i])) {
				return false
			}
		}
		return true
	}
	return false
}

// order compares two normalized values of the same primitive type.
func order(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok || math.IsNaN(x) || math.IsNaN(y) {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	}
	return 0, false
}
