package query

import (
	"strconv"
	"strings"
)

// String returns the query in canonical form: keywords in upper case,
// strings in single quotes, numbers as Go formats float64 and only the
// parentheses the grammar needs. Parse(q.String()) yields an equal query.
func (q *Query) String() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if q.Count {
		b.WriteString("COUNT() AS ")
		b.WriteString(q.CountAlias)
	} else {
		b.WriteByte('*')
	}
	b.WriteString(" FROM ")
	b.WriteString(q.From.String())
	if q.where != nil {
		b.WriteString(" WHERE ")
		q.where.write(&b, q.From)
	}
	return b.String()
}

// reserved are the names that cannot start a path as written: they read as
// keywords or literals, or would be taken for the source's name.
var reserved = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "SELECT": true, "FROM": true, "WHERE": true,
	"TRUE": true, "FALSE": true, "NULL": true, "DEVICES": true,
}

func (e *literal) write(b *strings.Builder, _ Source) {
	switch v := e.v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case float64:
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	case string:
		writeString(b, v)
	}
}

func writeString(b *strings.Builder, s string) {
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte("0123456789abcdef"[c>>4])
				b.WriteByte("0123456789abcdef"[c&15])
				continue
			}
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
}

func (e *path) write(b *strings.Builder, src Source) {
	if reserved[strings.ToUpper(e.segs[0])] {
		b.WriteString(src.String())
		b.WriteByte('.')
	}
	b.WriteString(strings.Join(e.segs, "."))
}

func (e *isDefined) write(b *strings.Builder, src Source) {
	b.WriteString("IS_DEFINED(")
	e.e.write(b, src)
	b.WriteByte(')')
}

// Precedence levels, loosest first.
const (
	precOr = iota
	precAnd
	precNot
	precCompare
	precOperand
)

func prec(e expr) int {
	switch x := e.(type) {
	case *logical:
		if x.or {
			return precOr
		}
		return precAnd
	case *notExpr:
		return precNot
	case *comparison:
		return precCompare
	}
	return precOperand
}

// writeAt writes e, parenthesized when it binds looser than min.
func writeAt(b *strings.Builder, e expr, min int, src Source) {
	if prec(e) < min {
		b.WriteByte('(')
		e.write(b, src)
		b.WriteByte(')')
		return
	}
	e.write(b, src)
}

func (e *notExpr) write(b *strings.Builder, src Source) {
	b.WriteString("NOT ")
	writeAt(b, e.e, precNot, src)
}

func (e *logical) write(b *strings.Builder, src Source) {
	p := precAnd
	kw := " AND "
	if e.or {
		p, kw = precOr, " OR "
	}
	writeAt(b, e.l, p, src)
	b.WriteString(kw)
	writeAt(b, e.r, p+1, src) // the parser builds left-deep trees
}

func (e *comparison) write(b *strings.Builder, src Source) {
	writeAt(b, e.l, precCompare, src)
	b.WriteByte(' ')
	b.WriteString(opText[e.op])
	b.WriteByte(' ')
	writeAt(b, e.r, precOperand, src)
}
